"""Build and verify the embedded photo models from the embedded plain ones:
src/fashion_onnx/assets/fashion_{mlp,cnn}_photo.onnx (``make photo-models``).

The same code as ``fashion-export --photo`` (fashion_onnx.export.photo_model), run on the
committed ONNX files instead of a checkpoint, so that the plain models stay byte for byte
as they are. Prints each model's check as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from fashion_onnx.export.photo_model import photo_path, write_photo_model
from fashion_onnx.fashion_mnist import load_split
from fashion_onnx.fileio import atomic_path

ASSETS = Path(__file__).resolve().parent.parent / "src" / "fashion_onnx" / "assets"


def main() -> None:
    images, _ = load_split("test")
    for name in ("mlp", "cnn"):
        plain = ASSETS / f"fashion_{name}.onnx"
        with atomic_path(photo_path(plain), suffix=".onnx") as tmp:
            check = write_photo_model(plain, tmp, images)
        print(json.dumps({"model": photo_path(plain).name, **check.to_dict()}))


if __name__ == "__main__":
    main()
