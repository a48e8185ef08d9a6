"""Any picture -> the model's 28x28 input, as FashionMNIST itself was made.

Three ways, one function (``prepare``) that every Python path calls (``Classifier``,
``classify_files``, ``fashion-infer``, the Ray engine, the server):
- a 28x28 picture is already in the dataset's form: grayscale, inverted if its border is
  light (``--invert``), pixel for pixel otherwise;
- ``--fit full`` squeezes the whole frame, in grayscale: inverted if light, padded to a
  square with black, resized;
- any other picture is a photo (``--fit trim``, the default): ``photo.prepare_photo``
  finds the garment against its background in colour, straightens, trims, fits and
  centres it as Zalando made the dataset. Polarity does not arise there: the garment is
  whatever differs from the background, light or dark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
from PIL import Image

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.errors import InvalidArgumentError
from fashion_onnx.infer.photo import prepare_photo
from fashion_onnx.infer.png import luma

Invert = Literal["auto", "always", "never"]
Fit = Literal["trim", "full"]
INVERT_CHOICES: tuple[str, ...] = ("auto", "always", "never")
FIT_CHOICES: tuple[str, ...] = ("trim", "full")


def light_borders(stack: np.ndarray) -> np.ndarray:
    """(n, h, w) images, h and w >= 3 -> (n,) bool: is the 1-pixel border brighter than
    mid-grey? That is a product photo (dark garment on light), not FashionMNIST."""
    _, h, w = stack.shape
    # the four edges alone (exact: integers, or float64 sums of a few pixels each)
    kind = np.int64 if stack.dtype == np.uint8 else np.float64
    border_sum = (
        stack[:, 0, :].sum(axis=1, dtype=kind)
        + stack[:, -1, :].sum(axis=1, dtype=kind)
        + stack[:, 1:-1, 0].sum(axis=1, dtype=kind)
        + stack[:, 1:-1, -1].sum(axis=1, dtype=kind)
    )
    border_count = 2 * w + 2 * (h - 2)
    full_scale = 255.0 if stack.dtype == np.uint8 else 1.0
    return np.asarray(border_sum > border_count * full_scale / 2)


def has_light_background(gray: np.ndarray) -> bool:
    """``light_borders`` for one (h, w) image; tiny images compare their mean instead."""
    h, w = gray.shape
    if h < 3 or w < 3:
        return bool(gray.mean() > (127.5 if gray.dtype == np.uint8 else 0.5))
    return bool(light_borders(gray[None])[0])


def check_invert(invert: str) -> Invert:
    """``invert`` as an ``Invert``; InvalidArgumentError unless it is auto, always or never."""
    if invert not in INVERT_CHOICES:
        raise InvalidArgumentError(
            f"invert must be one of {', '.join(INVERT_CHOICES)}, got {invert!r}"
        )
    return cast(Invert, invert)


def check_fit(fit: str) -> Fit:
    """``fit`` as a ``Fit``; InvalidArgumentError unless it is trim or full."""
    if fit not in FIT_CHOICES:
        raise InvalidArgumentError(f"fit must be one of {', '.join(FIT_CHOICES)}, got {fit!r}")
    return cast(Fit, fit)


def should_invert(gray: np.ndarray, invert: Invert) -> bool:
    check_invert(invert)
    return invert == "always" or (invert == "auto" and has_light_background(gray))


@dataclass(frozen=True)
class Preparation:
    """How a picture becomes the model's input: one value every Python path shares.

    invert: for pictures that go the dataset's way (28x28 ones, and any with fit "full"):
        "auto" inverts those whose border is light, "always" or "never" force it.
    fit: "trim" finds the garment in a photo and fits it to 28x28, as the dataset was
        made; "full" fits the whole frame (pads it to a square, then resizes).
    """

    invert: Invert = "auto"
    fit: Fit = "trim"

    def __post_init__(self) -> None:
        check_invert(self.invert)
        check_fit(self.fit)


def fit_full_frame(gray: np.ndarray) -> np.ndarray:
    """(h, w) uint8 on a dark background -> (28, 28): padded to a square with black, then
    resized whole (``--fit full``)."""
    h, w = gray.shape
    side = max(h, w)
    if h != w:
        square = np.zeros((side, side), dtype=np.uint8)
        top, left = (side - h) // 2, (side - w) // 2
        square[top : top + h, left : left + w] = gray
        gray = square
    small = Image.fromarray(gray, mode="L").resize(
        (IMAGE_SIZE, IMAGE_SIZE),
        Image.Resampling.BOX if side > IMAGE_SIZE else Image.Resampling.BILINEAR,
    )
    return np.asarray(small, dtype=np.uint8)


def prepare(pixels: np.ndarray, preparation: Preparation | None = None) -> np.ndarray:
    """A uint8 picture, (h, w) grayscale or (h, w, 3) RGB -> uint8 (28, 28), light
    garment on dark.

    28x28 pictures and ``fit="full"`` go the dataset's way in grayscale (RGB turned to
    grey as Pillow does): inverted when ``preparation.invert`` says (by default, when the
    border is light); a 28x28 picture then keeps its pixels, a larger one is padded to a
    square and resized. Any other picture is a photo: ``photo.prepare_photo``.
    """
    preparation = preparation or Preparation()
    if pixels.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE) and preparation.fit == "trim":
        return prepare_photo(pixels)
    gray = luma(pixels) if pixels.ndim == 3 else pixels
    if should_invert(gray, preparation.invert):
        gray = 255 - gray
    if gray.shape == (IMAGE_SIZE, IMAGE_SIZE):
        return np.ascontiguousarray(gray)
    return fit_full_frame(gray)
