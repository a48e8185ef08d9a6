"""Torch-free inference on ONNX Runtime: numpy, onnxruntime, Pillow and the standard library.

from fashion_onnx.infer import Classifier
clf = Classifier()
clf.predict(["shoe.png", "shirt.jpg"]).names          # a few images; a bad file raises
for batch in clf.classify_files(["photos/"]):          # many files; bad ones are collected
    batch.paths, batch.probabilities, batch.failures

The names load on first use, so the CLI's light modules import without onnxruntime and
can say in one line how to install it when it is missing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Classifier", "Failure", "FileBatch", "Predictions", "classify_files"]
_HOMES = {
    "Classifier": "classifier",
    "Predictions": "classifier",
    "Failure": "decode",
    "FileBatch": "files",
    "classify_files": "files",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        from importlib import import_module

        return getattr(import_module(f"fashion_onnx.infer.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'fashion_onnx.infer' has no attribute {name!r}")
