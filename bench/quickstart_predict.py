"""Baselines 3b and 4: prediction written the quickstart way (the seed's predict snippet).

import torch, load the .pth into NeuralNetwork, then one image at a time:
Pillow -> ToTensor -> model -> argmax -> class name. Prints {"files"} as JSON.
Run: python -m bench.quickstart_predict MODEL.pth PATH (a file or a folder of PNGs)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision.transforms import ToTensor

classes = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


class NeuralNetwork(nn.Module):  # the quickstart's, verbatim
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
        )

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


def main() -> None:
    model_path, target = sys.argv[1], Path(sys.argv[2])
    model = NeuralNetwork()
    model.load_state_dict(torch.load(model_path))
    model.eval()
    files = sorted(target.glob("*.png")) if target.is_dir() else [target]
    to_tensor = ToTensor()
    predicted = []
    with torch.no_grad():
        for path in files:
            x = to_tensor(Image.open(path).convert("L"))
            pred = model(x)
            predicted.append(classes[pred[0].argmax(0)])
    print(json.dumps({"files": len(predicted)}))


if __name__ == "__main__":
    main()
