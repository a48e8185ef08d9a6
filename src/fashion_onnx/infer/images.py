"""Turn any image into the model's 28x28 grayscale input, refusing unsafe files.

Every step is per image, so one bad file costs only itself: ``load_image`` raises
``ImageError`` with a one-line reason, and callers go on with the next file.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from typing import Literal, cast

import numpy as np
from PIL import Image, UnidentifiedImageError

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.errors import ImageError, InvalidArgumentError

Invert = Literal["auto", "always", "never"]
Source = str | os.PathLike[str] | bytes  # a file, or a file's contents
INVERT_CHOICES: tuple[str, ...] = ("auto", "always", "never")
MAX_PIXELS = 40_000_000  # refuse larger images before decoding (decompression bombs)
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
)  # compared lower-cased, so .PNG counts too


def light_borders(stack: np.ndarray) -> np.ndarray:
    """(n, h, w) images, h and w >= 3 -> (n,) bool: is the 1-pixel border brighter than
    mid-grey? That is a product photo (dark garment on light), not FashionMNIST."""
    _, h, w = stack.shape
    # border = everything minus the interior: two reductions, no copies (exact in float64)
    whole = stack.sum(axis=(1, 2), dtype=np.float64)
    border_sum = whole - stack[:, 1:-1, 1:-1].sum(axis=(1, 2), dtype=np.float64)
    border_count = h * w - (h - 2) * (w - 2)
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


def should_invert(gray: np.ndarray, invert: Invert) -> bool:
    check_invert(invert)
    return invert == "always" or (invert == "auto" and has_light_background(gray))


def _to_gray_array(image: Image.Image) -> np.ndarray:
    """Any mode -> uint8 (H, W). Transparency is laid on white; 16-bit is scaled, not clipped."""
    if image.mode == "L" and "transparency" not in image.info:  # the common case, first
        return np.asarray(image, dtype=np.uint8)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return (np.asarray(image, dtype=np.uint16) // 257).astype(np.uint8)
    if image.mode == "I":
        ints = np.asarray(image, dtype=np.int64)
        divisor = 257 if ints.max(initial=0) > 255 else 1  # 16-bit data in a 32-bit mode
        return np.clip(ints // divisor, 0, 255).astype(np.uint8)
    if image.mode == "F":
        floats = np.asarray(image, dtype=np.float64)
        scale = 255.0 if floats.max(initial=0.0) <= 1.0 else 1.0
        return np.clip(floats * scale, 0, 255).round().astype(np.uint8)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    if image.mode != "L":
        try:
            if image.mode == "CMYK":
                image = image.convert("RGB")
            image = image.convert("L")
        except ValueError as exc:  # a mode Pillow cannot turn into grayscale
            raise ImageError(f"unsupported image mode {image.mode}: {exc}") from None
    return np.asarray(image, dtype=np.uint8)


def to_model_image(image: Image.Image, invert: Invert = "auto") -> np.ndarray:
    """A decoded PIL image -> uint8 (28, 28), light garment on dark, aspect ratio kept."""
    gray = _to_gray_array(image)
    if invert == "always" or (invert == "auto" and has_light_background(gray)):
        gray = 255 - gray
    if gray.shape == (IMAGE_SIZE, IMAGE_SIZE):
        return np.ascontiguousarray(gray)
    h, w = gray.shape
    side = max(h, w)
    if h != w:  # pad to a square with the (now dark) background
        square = np.zeros((side, side), dtype=np.uint8)
        top, left = (side - h) // 2, (side - w) // 2
        square[top : top + h, left : left + w] = gray
        gray = square
    small = Image.fromarray(gray, mode="L").resize(
        (IMAGE_SIZE, IMAGE_SIZE),
        Image.Resampling.BOX if side > IMAGE_SIZE else Image.Resampling.BILINEAR,
    )
    return np.asarray(small, dtype=np.uint8)


@contextlib.contextmanager
def bomb_checks() -> Iterator[None]:
    """Make Pillow's decompression-bomb warning an error while images are read."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _decode_first_frame(path: str | os.PathLike[str] | io.BytesIO) -> Image.Image:
    """Open and decode the file's first frame (an opened image is at its first frame):
    every step that reads the file's bytes."""
    image = Image.open(path)
    try:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageError(
                f"decompression bomb refused before decoding: {width}x{height} pixels "
                f"exceeds the {MAX_PIXELS:,}-pixel limit"
            )
        if image.format == "JPEG":
            image.draft("L", (IMAGE_SIZE, IMAGE_SIZE))  # let libjpeg downscale
        image.load()
    except BaseException:
        image.close()
        raise
    return image


def load_image(path: str | os.PathLike[str], invert: Invert = "auto") -> np.ndarray:
    """Open, check and convert one image file to uint8 (28, 28), light garment on dark.

    Only what the file can cause becomes an ``ImageError``; a failure in the conversion
    of an image that decoded is a bug, and keeps its traceback.

    Raises:
        ImageError: with a one-line reason: not a file, unreadable, not an image,
            truncated or corrupt, an unsupported mode, or too many pixels (checked
            before decoding).
    """
    with bomb_checks(), open_image(path) as image:
        return to_model_image(image, invert)


def open_image(source: Source) -> Image.Image:
    """Open a file (or a file's bytes) and decode its first frame; call it inside
    ``bomb_checks()``.

    Raises:
        ImageError: whatever the file's bytes (or its absence) cause, as one line.
    """
    if isinstance(source, bytes):
        if not source:
            raise ImageError("empty file (0 bytes)")
        path: str | os.PathLike[str] | None = None
        readable: str | os.PathLike[str] | io.BytesIO = io.BytesIO(source)
    else:
        path = readable = source
    try:
        return _decode_first_frame(readable)
    except ImageError:
        raise
    except IsADirectoryError:
        raise ImageError("is a directory, not an image file") from None
    except FileNotFoundError:
        reason = "broken symlink" if path and os.path.islink(path) else "no such file"
        raise ImageError(reason) from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except UnidentifiedImageError:
        if path is None:
            size = len(source) if isinstance(source, bytes) else 0
        else:
            size = os.path.getsize(path) if os.path.exists(path) else 0
        raise ImageError(
            "empty file (0 bytes)" if size == 0 else "not an image Pillow can read"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"decompression bomb refused before decoding: {exc}") from None
    except (OSError, SyntaxError, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"truncated or corrupt image: {first}") from None
    except Exception as exc:  # Pillow's format plugins raise many types on malformed bytes
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ImageError(f"corrupt image ({type(exc).__name__}: {first})") from None
