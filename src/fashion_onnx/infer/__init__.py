"""Torch-free inference on ONNX Runtime: numpy, onnxruntime, Pillow and the standard library.

from fashion_onnx.infer import Classifier
clf = Classifier()
clf.predict(["shoe.png", "shirt.jpg"]).names          # a few images; a bad file raises
for batch in clf.classify_files(["photos/"]):          # many files; bad ones are collected
    batch.paths, batch.probabilities, batch.failures
write_predictions(["photos/"], "rows.csv", JobOptions(top_k=3))   # what fashion-infer -o does

The names load on first use, so the CLI's light modules import without onnxruntime and
can say in one line how to install it when it is missing.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Classifier",
    "Failure",
    "FileBatch",
    "JobOptions",
    "JobResult",
    "Predictions",
    "Trust",
    "classify_files",
    "write_predictions",
]
_HOMES = {
    "Classifier": "classifier",
    "Predictions": "classifier",
    "Failure": "decode",
    "FileBatch": "files",
    "classify_files": "files",
    "JobOptions": "job",
    "JobResult": "job",
    "Trust": "job",
    "write_predictions": "job",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        from importlib import import_module

        return getattr(import_module(f"fashion_onnx.infer.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'fashion_onnx.infer' has no attribute {name!r}")
