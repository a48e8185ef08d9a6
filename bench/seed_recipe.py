"""The seed's quickstart training recipe, as written there: the baseline for training.

SGD lr 1e-3, batch 64, 10 epochs, DataLoader over torchvision's FashionMNIST with
ToTensor applied per sample. Prints {"seconds", "accuracy"} as JSON.
Run: python -m bench.seed_recipe [--epochs N] [--max-batches N]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import ToTensor

from fashion_onnx.models import NeuralNetwork
from fashion_onnx.train.data import ensure_raw_files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-batches", type=int, default=None, help="per epoch (smoke runs)")
    args = parser.parse_args()
    root, _ = ensure_raw_files(download=False)  # the files only; the seed loads them itself
    start = time.perf_counter()
    training_data = datasets.FashionMNIST(
        root=root, train=True, download=False, transform=ToTensor()
    )
    test_data = datasets.FashionMNIST(root=root, train=False, download=False, transform=ToTensor())
    train_dataloader = DataLoader(training_data, batch_size=64)
    test_dataloader = DataLoader(test_data, batch_size=64)
    model = NeuralNetwork()  # the quickstart's architecture and keys
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    correct = 0.0
    for _ in range(args.epochs):
        model.train()
        for batch, (X, y) in enumerate(train_dataloader):
            if args.max_batches is not None and batch >= args.max_batches:
                break
            loss = loss_fn(model(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0.0
        with torch.no_grad():
            for X, y in test_dataloader:
                correct += (model(X).argmax(1) == y).type(torch.float).sum().item()
        correct /= len(test_dataloader.dataset)
    print(json.dumps({"seconds": time.perf_counter() - start, "accuracy": correct}))


if __name__ == "__main__":
    main()
