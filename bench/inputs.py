"""Generated benchmark inputs under bench/work/ (made once, reused)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import WORK


def png_folder(images: np.ndarray, name: str) -> Path:
    """The test images as PNG files in WORK/name (written once)."""
    folder = WORK / name
    done = folder / ".complete"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for i, pixels in enumerate(images):
            Image.fromarray(pixels, mode="L").save(folder / f"{i:05d}.png")
        done.touch()
    return folder


def linked_folder(source: Path, count: int, name: str) -> Path:
    """WORK/name holding ``count`` hard links that cycle through source's PNGs."""
    folder = WORK / name
    done = folder / ".complete"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        files = sorted(source.glob("*.png"))
        for i in range(count):
            target = folder / f"{i:06d}.png"
            if not target.exists():
                os.link(files[i % len(files)], target)
        done.touch()
    return folder
