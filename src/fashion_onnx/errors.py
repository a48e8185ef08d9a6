"""Typed errors a user can cause. Torch-free, so the inference path can use them.

The CLIs map every ``FashionOnnxError`` to a one-line message and exit status 2
(usage or configuration error); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class FashionOnnxError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidArgumentError(FashionOnnxError, ValueError):
    """An argument is out of range or not one of its choices; the message names both."""


class DataNotFoundError(FashionOnnxError, FileNotFoundError):
    """FashionMNIST could not be found, unpacked or downloaded."""


class CheckpointError(FashionOnnxError, ValueError):
    """A .pth file is missing, unreadable, unsafe or not a state_dict of this model."""


class ExportValidationError(FashionOnnxError, ValueError):
    """The exported ONNX file does not reproduce torch. ``mismatches`` lists every failure."""

    def __init__(self, mismatches: list[str]) -> None:
        self.mismatches = list(mismatches)
        if len(self.mismatches) == 1:
            super().__init__(f"ONNX export failed verification: {self.mismatches[0]}")
            return
        lines = "\n".join(f"  - {m}" for m in self.mismatches)
        super().__init__(
            f"ONNX export failed verification ({len(self.mismatches)} issues):\n{lines}"
        )


class ModelError(FashionOnnxError, ValueError):
    """An ONNX model is unreadable or has the wrong signature."""


class DeviceError(FashionOnnxError, RuntimeError):
    """The requested execution device is not usable here."""


class ImageError(FashionOnnxError, ValueError):
    """One image could not be read. Raised per file; the batch goes on."""


class MissingExtraError(FashionOnnxError, ImportError):
    """An optional part (ONNX Runtime, Ray) is not installed; the message names the command
    that installs it."""


class ExportError(FashionOnnxError, OSError):
    """An export's files could not be written (a directory in the way, a full disk, ...)."""
