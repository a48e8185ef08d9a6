"""Real test images turned into product photos, as shops take them (issue #18's set).

Each garment is inverted to dark-on-white and enlarged, then either fills the picture
("full frame") or sits off-centre on a white canvas filling 35-90% of the longer side
("with margins"), saved as JPEG, WebP or PNG. A fixed seed makes the same set every time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

FORMATS = ("JPEG", "WEBP", "PNG")
SUFFIX = {"JPEG": ".jpg", "WEBP": ".webp", "PNG": ".png"}


@dataclass(frozen=True)
class Photo:
    data: bytes  # the encoded file
    suffix: str  # .jpg, .webp or .png


def _encode(image: Image.Image, fmt: str) -> Photo:
    buffer = io.BytesIO()
    options = {"JPEG": {"quality": 90}, "WEBP": {"quality": 90}, "PNG": {}}[fmt]
    image.save(buffer, format=fmt, **options)
    return Photo(buffer.getvalue(), SUFFIX[fmt])


def _garment(pixels: np.ndarray, side: int) -> Image.Image:
    """A 28x28 test image, dark garment on white, enlarged to side x side (bicubic)."""
    dark_on_white = Image.fromarray(255 - pixels, mode="L")
    return dark_on_white.resize((side, side), Image.Resampling.BICUBIC)


def full_frame(pixels: np.ndarray, rng: np.random.Generator) -> Photo:
    """The garment fills the picture: 28x28 -> 112..448 px square, in RGB."""
    side = int(rng.integers(112, 449))
    fmt = FORMATS[int(rng.integers(len(FORMATS)))]
    return _encode(_garment(pixels, side).convert("RGB"), fmt)


def with_margins(pixels: np.ndarray, rng: np.random.Generator) -> Photo:
    """The garment off-centre on a white canvas (portrait, square or landscape), its
    side 35-90% of the canvas's longer side, in RGB."""
    width, height = [(300, 400), (400, 400), (400, 300), (240, 320), (640, 480)][
        int(rng.integers(5))
    ]
    longer = max(width, height)
    side = min(int(longer * rng.uniform(0.35, 0.90)), width, height)
    canvas = Image.new("L", (width, height), 255)
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    canvas.paste(_garment(pixels, side), (left, top))
    fmt = FORMATS[int(rng.integers(len(FORMATS)))]
    return _encode(canvas.convert("RGB"), fmt)


def photo_set(
    images: np.ndarray, count: int, seed: int = 18
) -> tuple[np.ndarray, list[Photo], list[Photo]]:
    """(the indices of the ``count`` test images used, their full-frame photos, their
    photos with margins), the same for the same seed."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(images), size=count, replace=False))
    full = [full_frame(images[i], rng) for i in chosen]
    margins = [with_margins(images[i], rng) for i in chosen]
    return chosen, full, margins
