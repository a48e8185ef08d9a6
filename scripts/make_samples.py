"""Regenerate samples/: 20 real FashionMNIST test images (2 per class) in mixed formats.

Some are saved as they are (28x28, light garment on dark); a few are enlarged and
inverted like product photos, to show ``--invert auto`` at work. samples/labels.csv
records each file's true class.  Run: python scripts/make_samples.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from fashion_onnx.constants import CLASS_NAMES
from fashion_onnx.train.data import load_fashion_mnist

OUT = Path(__file__).resolve().parent.parent / "samples"
FORMATS = ["png", "jpg", "bmp", "webp", "gif", "tiff", "PNG"]


def main() -> None:
    data = load_fashion_mnist(download=False)
    images, labels = data.test_images.numpy(), data.test_labels.numpy()
    OUT.mkdir(exist_ok=True)
    rows = []
    for label, name in enumerate(CLASS_NAMES):
        for copy, index in enumerate(np.flatnonzero(labels == label)[:2]):
            pixels = images[index]
            n = len(rows)
            ext = FORMATS[n % len(FORMATS)]
            image = Image.fromarray(pixels, mode="L")
            if copy == 1 and label % 3 == 0:  # a product-photo look: big, dark on white
                image = Image.fromarray(255 - pixels, mode="L").resize((112, 112), Image.LANCZOS)
            stem = f"{n:02d}_{name.replace('/', '-').replace(' ', '-').lower()}"
            file = f"{stem}.{ext}"
            save_kwargs = {"quality": 95} if ext == "jpg" else {}
            image.save(OUT / file, **save_kwargs)
            rows.append({"file": file, "class": name, "test_index": int(index)})
    with (OUT / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "class", "test_index"])
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
