"""A list of files (or files' bytes) -> their prepared 28x28 images, a bad one costing only
itself. The one decode step of the local engine's workers, the Ray engine and the server.

Per file: read its bytes; a common PNG is decoded natively (``png``), anything else by
Pillow (``images``, which also turns a picture upright by its EXIF orientation); 28x28
grayscale pixels are taken as they are, any other picture goes through ``prepare``. The
light-background check of the 28x28 ones runs once per chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.errors import ImageError
from fashion_onnx.infer.images import (
    MAX_PIXELS,
    Source,
    bomb_checks,
    open_image,
    orientation,
    read_file,
    to_model_image,
)
from fashion_onnx.infer.png import decode_png, luma
from fashion_onnx.infer.prepare import Preparation, light_borders, prepare

SHAPE = (IMAGE_SIZE, IMAGE_SIZE)


@dataclass(frozen=True)
class Failure:
    """One input that could not be classified, and why (one line)."""

    path: str
    reason: str


@dataclass(frozen=True)
class DecodedChunk:
    """Images decoded from a list of sources."""

    images: np.ndarray  # (k, 28, 28) uint8, light garment on dark: the sources that decoded
    errors: list[str | None]  # per source, in order: None if it decoded, else the reason

    def split(self, names: Sequence[str]) -> tuple[list[str], list[Failure]]:
        """(the names of the sources that decoded, a Failure for each other one)."""
        ok = [name for name, error in zip(names, self.errors, strict=True) if error is None]
        failures = [
            Failure(name, error)
            for name, error in zip(names, self.errors, strict=True)
            if error is not None
        ]
        return ok, failures


def _decode_one(source: Source, preparation: Preparation) -> tuple[np.ndarray, bool]:
    """(the image, whether it is a plain 28x28 grayscale one still to check for a light
    background) or ImageError."""
    data = source if isinstance(source, bytes) else read_file(source)
    pixels = decode_png(data, MAX_PIXELS)
    if pixels is not None:
        if pixels.shape[:2] == SHAPE:
            return (pixels if pixels.ndim == 2 else luma(pixels)), True
        return prepare(pixels, preparation), False
    with open_image(data, preparation) as image:
        plain = image.mode == "L" and image.size == SHAPE and "transparency" not in image.info
        if plain and orientation(image) == 1:
            return np.frombuffer(image.tobytes(), np.uint8).reshape(SHAPE), True
        return to_model_image(image, preparation), False


def decode_chunk(sources: Sequence[Source], preparation: Preparation) -> DecodedChunk:
    """Decode and prepare files (or files' bytes) one by one, as ``load_image`` would.

    Only what a file can cause becomes its error; a failure in the conversion of an image
    that decoded is a bug, and keeps its traceback.
    """
    images = np.empty((len(sources), *SHAPE), dtype=np.uint8)
    plain = np.zeros(len(sources), dtype=bool)  # rows still to check for a light background
    errors: list[str | None] = []
    row = 0
    with bomb_checks():
        for source in sources:
            try:
                images[row], plain[row] = _decode_one(source, preparation)
            except ImageError as exc:
                errors.append(str(exc))
                continue
            errors.append(None)
            row += 1
    images, plain = images[:row], plain[:row]
    invert = preparation.invert
    if invert != "never" and plain.any():
        flip = plain if invert == "always" else plain & light_borders(images)
        images[flip] = 255 - images[flip]
    return DecodedChunk(images, errors)
