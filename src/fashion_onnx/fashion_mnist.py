"""Where real FashionMNIST lives offline, and its IDX files read with numpy. Torch-free.

Training unpacks the files into torchvision's ``raw/`` layout (``fashion_onnx.train.data``);
inference tests, benchmarks and the GPU check read them here without torch.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Literal

import numpy as np

from fashion_onnx.constants import HELD_OUT
from fashion_onnx.errors import DataNotFoundError

DATA_DIR_ENV = "FASHION_ONNX_DATA_DIR"
DEBIAN_DIR_ENV = "FASHION_ONNX_DEBIAN_DIR"  # where Debian's package put the .gz files
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

Split = Literal["train", "test"]
# IDX file stem -> (magic, item count): 0x0803 images, 0x0801 labels, big-endian.
IDX_HEADERS: dict[str, tuple[int, int]] = {
    "train-images-idx3-ubyte": (2051, 60000),
    "train-labels-idx1-ubyte": (2049, 60000),
    "t10k-images-idx3-ubyte": (2051, 10000),
    "t10k-labels-idx1-ubyte": (2049, 10000),
}
_STEMS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def default_data_dir() -> Path:
    """``$FASHION_ONNX_DATA_DIR``, else ``~/.cache/fashion-onnx``."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else Path.home() / ".cache" / "fashion-onnx"


def default_debian_dir() -> Path:
    """``$FASHION_ONNX_DEBIAN_DIR``, else where Debian's ``dataset-fashion-mnist`` puts it."""
    env = os.environ.get(DEBIAN_DIR_ENV)
    return Path(env) if env else DEBIAN_DIR


def raw_dir(data_dir: Path) -> Path:
    """torchvision's layout: ``DATA_DIR/FashionMNIST/raw``."""
    return data_dir / "FashionMNIST" / "raw"


def check_idx(stem: str, raw: bytes, source: Path) -> None:
    """Raise DataNotFoundError unless ``raw`` starts with the IDX header ``stem`` must have."""
    expected = IDX_HEADERS[stem]
    found = (int.from_bytes(raw[0:4], "big"), int.from_bytes(raw[4:8], "big"))
    if found != expected:
        raise DataNotFoundError(
            f"{source}: not a FashionMNIST IDX file (header {found}, expected {expected})"
        )


def read_idx(path: Path, stem: str) -> np.ndarray:
    """An IDX file (plain or .gz) as uint8: images (N, 28, 28) or labels (N,)."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    check_idx(stem, raw, path)
    dims = int.from_bytes(raw[3:4], "big")  # 3 for images, 1 for labels
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _find(stem: str, data_dir: Path | None, debian_dir: Path | None) -> Path:
    candidates = [
        raw_dir(default_data_dir() if data_dir is None else data_dir) / stem,
        (default_debian_dir() if debian_dir is None else debian_dir) / f"{stem}.gz",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise DataNotFoundError(
        f"FashionMNIST's {stem} not found in {' or '.join(map(str, candidates))}. "
        "Run: apt-get install dataset-fashion-mnist"
    )


def load_split(
    split: Split, data_dir: Path | None = None, debian_dir: Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) of one split, read without torch.

    Looks in the data dir's ``FashionMNIST/raw`` first, then in Debian's package.

    Raises:
        DataNotFoundError: a file is in neither place, or is not the IDX file it should be.
    """
    images_stem, labels_stem = _STEMS[split]
    images = read_idx(_find(images_stem, data_dir, debian_dir), images_stem)
    labels = read_idx(_find(labels_stem, data_dir, debian_dir), labels_stem)
    return images, labels


# The training images fashion-train holds out and fashion-export fits the temperature on:
# a seeded sample, the same on every machine. Never test images.
HELD_OUT_SEED = 24


def held_out(train_count: int = IDX_HEADERS["train-images-idx3-ubyte"][1]) -> np.ndarray:
    """The sorted indices of the ``HELD_OUT`` training images kept out of training."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    return np.sort(rng.choice(train_count, HELD_OUT, replace=False))
