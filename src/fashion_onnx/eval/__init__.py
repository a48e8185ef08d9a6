"""fashion-eval: how far to trust a model (accuracy, confusion, calibration, OOD). Torch-free."""
