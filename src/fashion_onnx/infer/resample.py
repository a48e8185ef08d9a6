"""Resampling as matrix products and gathers, so that an ONNX graph can do exactly the same:
the fit to 28 pixels, the turn that straightens a tilted garment, the sharpening.

Every weight comes from arithmetic on the sizes (no library resize whose rounding another
runtime could not repeat); float32 throughout.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from fashion_onnx.constants import IMAGE_SIZE

F32 = np.float32
# Keys's cubic with a = -0.5, as Pillow's and OpenCV's bicubic resizes use.
CUBIC_A = -0.5
# Zalando sharpened each image "with a Gaussian operator of radius and standard deviation
# 1.0" after the resize. An unsharp mask of that Gaussian, this strong, was measured on
# bench/photos.py's photos as taken: 0.6 helped the CNN by 1 to 2 points and cost the MLP
# at most half a point (0, 0.3, 0.6, 0.8 and 1.0 tried).
SHARPEN_AMOUNT = 0.6
SHARPEN_SIGMA = 1.0
SHARPEN_RADIUS = 2  # taps each side: the Gaussian's weight beyond is below 1.2%


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys's cubic kernel at ``x`` (zero beyond |x| >= 2)."""
    x = np.abs(x)
    a = F32(CUBIC_A)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, near, np.where(x < 2, far, F32(0))).astype(F32)


@functools.lru_cache(maxsize=128)  # a few MB: 28 x a few hundred float32 weights each
def resize_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of an antialiased bicubic resize: output pixel i is
    centred at (i + 0.5) * scale of the input; when shrinking, the kernel is stretched by
    the scale (antialiasing, as Pillow does). Rows sum to 1. Kept (read-only) for the next
    picture of the same size: making them was a third of the fit's time."""
    scale = F32(size_in) / F32(size_out)
    stretch = max(scale, F32(1))
    centres = (np.arange(size_out, dtype=F32) + F32(0.5)) * scale
    x = (np.arange(size_in, dtype=F32)[None, :] + F32(0.5) - centres[:, None]) / stretch
    weights = cubic(x)
    weights = np.asarray(weights / weights.sum(axis=1, keepdims=True), dtype=F32)
    weights.flags.writeable = False
    return weights


def fit_and_centre(garment: np.ndarray) -> np.ndarray:
    """(h, w) float intensities -> (28, 28) float: the longer edge resized to 28, the
    aspect ratio kept, centred on a black canvas as the dataset is (an odd pixel left over
    goes above and to the left)."""
    h, w = garment.shape
    longer = max(h, w)
    new_h = max(1, round(h * IMAGE_SIZE / longer))
    new_w = max(1, round(w * IMAGE_SIZE / longer))
    small = resize_weights(h, new_h) @ garment.astype(F32) @ resize_weights(w, new_w).T
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), F32)
    top, left = (IMAGE_SIZE - new_h + 1) // 2, (IMAGE_SIZE - new_w + 1) // 2
    canvas[top : top + new_h, left : left + new_w] = small
    return canvas


@functools.cache
def gaussian_taps() -> np.ndarray:
    """The sharpening Gaussian's 1-D taps (2 * SHARPEN_RADIUS + 1, summing to 1), read-only."""
    offsets = np.arange(-SHARPEN_RADIUS, SHARPEN_RADIUS + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (offsets / SHARPEN_SIGMA) ** 2)
    taps = np.asarray(taps / taps.sum(), dtype=F32)
    taps.flags.writeable = False
    return taps


def sharpen(image: np.ndarray) -> np.ndarray:
    """(28, 28) float -> the same plus SHARPEN_AMOUNT x (itself minus its Gaussian blur),
    the blur taking black beyond the edges."""
    taps = gaussian_taps()
    r = SHARPEN_RADIUS
    h, w = image.shape
    padded = np.zeros((h + 2 * r, w + 2 * r), F32)
    padded[r:-r, r:-r] = image
    rows = sum(taps[i] * padded[i : i + h, :] for i in range(2 * r + 1))
    blurred = sum(taps[i] * rows[:, i : i + w] for i in range(2 * r + 1))
    return np.asarray(image + F32(SHARPEN_AMOUNT) * (image - blurred), dtype=F32)


def turn(
    plane: np.ndarray,
    degrees: float,
    centre: tuple[float, float],
    origin: tuple[float, float],
    shape: tuple[int, int],
) -> np.ndarray:
    """Sample the (H, W) ``plane`` turned by ``degrees`` (counter-clockwise on screen)
    about ``centre`` = (row, column): output pixel (i, j) lies at (origin[0] + i,
    origin[1] + j) from the centre in the turned frame. Bilinear; zero outside the input."""
    height, width = plane.shape
    t = F32(degrees) * F32(math.pi / 180)
    cos, sin = np.cos(t), np.sin(t)
    oy = np.arange(shape[0], dtype=F32)[:, None] + F32(origin[0])
    ox = np.arange(shape[1], dtype=F32)[None, :] + F32(origin[1])
    # where each output pixel comes from, shifted by one for the zero border around
    x = np.clip(F32(centre[1] + 1) + (ox * cos - oy * sin), F32(0), F32(width + 1) - F32(1e-3))
    y = np.clip(F32(centre[0] + 1) + (ox * sin + oy * cos), F32(0), F32(height + 1) - F32(1e-3))
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    stride = width + 2
    i00 = y0.astype(np.intp) * stride + x0.astype(np.intp)
    i01 = np.minimum(x0.astype(np.intp) + 1, width + 1) + y0.astype(np.intp) * stride
    i10 = np.minimum(y0.astype(np.intp) + 1, height + 1) * stride + x0.astype(np.intp)
    i11 = i10 - x0.astype(np.intp) + np.minimum(x0.astype(np.intp) + 1, width + 1)
    flat = np.zeros((height + 2, stride), F32)
    flat[1:-1, 1:-1] = plane
    flat = flat.ravel()
    top = flat.take(i00) * (1 - fx) + flat.take(i01) * fx
    bottom = flat.take(i10) * (1 - fx) + flat.take(i11) * fx
    return np.asarray(top * (1 - fy) + bottom * fy, dtype=F32)
