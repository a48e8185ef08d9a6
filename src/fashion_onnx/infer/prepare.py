"""Any grayscale picture -> the model's 28x28 input, as FashionMNIST itself was made.

Zalando made the dataset from product photos: trim the edges close to the background,
fit the longer edge to 28 pixels, centre the garment on a 28x28 canvas, negate. ``prepare``
does the same to a user's photo, so a garment with margins around it classifies like one
that fills the frame. 28x28 images are already in the dataset's form and only get the
inversion check. Every Python path (``Classifier``, ``classify_files``, ``fashion-infer``,
the Ray engine) calls ``prepare``; ``web/prepare.js`` is its port for Node and the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
from PIL import Image

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.errors import InvalidArgumentError

Invert = Literal["auto", "always", "never"]
Fit = Literal["trim", "full"]
INVERT_CHOICES: tuple[str, ...] = ("auto", "always", "never")
FIT_CHOICES: tuple[str, ...] = ("trim", "full")
# Grey levels a garment's pixel must differ from the background by: above JPEG noise and
# faint shadows, below a garment's own faint edges. Chosen on bench/photos.py's set: 8 to
# 64 all work within a point; 32 was best for the CNN.
TRIM_THRESHOLD = 32


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

    invert: "auto" inverts pictures whose border is light (product photos), "always" or
        "never" force it.
    fit: "trim" cuts a picture to its garment before fitting it to 28x28, as the dataset
        was made; "full" fits the whole frame (pads it to a square, then resizes).
    """

    invert: Invert = "auto"
    fit: Fit = "trim"

    def __post_init__(self) -> None:
        check_invert(self.invert)
        check_fit(self.fit)


def garment_box(gray: np.ndarray) -> tuple[slice, slice] | None:
    """The rows and columns holding the garment in a (h, w) picture whose background is
    dark: everything that differs from the border's median by more than TRIM_THRESHOLD.
    None when nothing does (a blank picture)."""
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    background = int(np.median(border))
    garment = np.abs(gray.astype(np.int16) - background) > TRIM_THRESHOLD
    rows, cols = np.flatnonzero(garment.any(axis=1)), np.flatnonzero(garment.any(axis=0))
    if rows.size == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def fit_and_centre(gray: np.ndarray) -> np.ndarray:
    """(h, w) uint8 on a dark background -> (28, 28): the longer edge resized to 28
    (bicubic: measured better than area averaging for the CNN, equal for the MLP),
    centred on black as the dataset is (its bounding box in the middle; an odd pixel left
    over goes above and to the left, as in the dataset)."""
    h, w = gray.shape
    longer = max(h, w)
    new_h = max(1, round(h * IMAGE_SIZE / longer))
    new_w = max(1, round(w * IMAGE_SIZE / longer))
    if (new_h, new_w) != (h, w):
        gray = np.asarray(
            Image.fromarray(gray, mode="L").resize((new_w, new_h), Image.Resampling.BICUBIC)
        )
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    top, left = (IMAGE_SIZE - new_h + 1) // 2, (IMAGE_SIZE - new_w + 1) // 2
    canvas[top : top + new_h, left : left + new_w] = gray
    return canvas


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


def prepare(gray: np.ndarray, preparation: Preparation | None = None) -> np.ndarray:
    """A uint8 (h, w) grayscale picture -> uint8 (28, 28), light garment on dark.

    1. Background: a light border means a product photo: the picture is inverted (as
       ``preparation.invert`` says).
    2. Trim (``fit="trim"``): cut to the garment (``garment_box``); a blank picture is
       kept whole.
    3. Fit and centre: the longer edge becomes 28 pixels, centred on black.

    A 28x28 picture is already in the dataset's form: only step 1 applies, so its pixels
    are the file's (or their negative).
    """
    preparation = preparation or Preparation()
    if should_invert(gray, preparation.invert):
        gray = 255 - gray
    if gray.shape == (IMAGE_SIZE, IMAGE_SIZE):
        return np.ascontiguousarray(gray)
    if preparation.fit == "full":
        return fit_full_frame(gray)
    box = garment_box(gray)
    if box is None:  # nothing but background: classified whole, as with "full"
        return fit_full_frame(gray)
    return fit_and_centre(gray[box])
