"""Training: real FashionMNIST held in memory, a fast recipe, metrics and plots."""
