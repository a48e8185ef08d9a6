"""Decode any image file into pixels the way up a viewer shows them, refusing unsafe
files; ``prepare`` turns those into the model's 28x28 input.

Pictures that go the dataset's way (28x28 ones, and any with ``--fit full``) are decoded
in grayscale; photos keep their colour, which ``photo`` measures the background by. An
EXIF orientation (JPEG, PNG, WebP, TIFF) is honoured: the stored pixels are turned as the
tag says, as every viewer does.

Every step is per image, so one bad file costs only itself: ``load_image`` raises
``ImageError`` with a one-line reason, and callers go on with the next file.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.errors import ImageError
from fashion_onnx.infer.prepare import Preparation, prepare

Source = str | os.PathLike[str] | bytes  # a file, or a file's contents
MAX_PIXELS = 40_000_000  # refuse larger images before decoding (decompression bombs)
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
)  # compared lower-cased, so .PNG counts too


EXIF_ORIENTATION = 0x0112
# Formats whose EXIF Pillow keeps in info["exif"]: without that key there is no tag to
# read, and nothing is parsed (the common file pays one dictionary lookup).
EXIF_IN_INFO = frozenset({"JPEG", "MPO", "PNG", "WEBP"})


def orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) of a decoded image; 1 (upright) without a valid tag."""
    if image.format in EXIF_IN_INFO and "exif" not in image.info:
        return 1
    try:
        value = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # a malformed EXIF block: the pixels are still good
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(pixels: np.ndarray, turn: int) -> np.ndarray:
    """(h, w[, c]) pixels as stored -> as shown for EXIF orientation ``turn`` (a view):
    2 mirrored, 3 upside down, 4 flipped, 5 transposed, 6 turned a quarter clockwise,
    7 transversed, 8 turned a quarter counter-clockwise (Pillow's exif_transpose)."""
    if turn == 2:
        return pixels[:, ::-1]
    if turn == 3:
        return pixels[::-1, ::-1]
    if turn == 4:
        return pixels[::-1]
    if turn == 5:
        return pixels.swapaxes(0, 1)
    if turn == 6:
        return pixels.swapaxes(0, 1)[:, ::-1]
    if turn == 7:
        return pixels[::-1, ::-1].swapaxes(0, 1)
    if turn == 8:
        return pixels.swapaxes(0, 1)[::-1]
    return pixels


def _flattened(image: Image.Image) -> Image.Image:
    """Palette and transparency resolved: a palette image expanded, transparency laid on
    white (RGBA, LA, PA, or a transparency key)."""
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image


def _deep_gray(image: Image.Image) -> np.ndarray | None:
    """16-bit, 32-bit and float grayscale modes -> uint8 (h, w); None for other modes.
    16-bit is scaled, not clipped."""
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
    return None


def _to_gray_array(image: Image.Image) -> np.ndarray:
    """Any mode -> uint8 (H, W). Transparency is laid on white; 16-bit is scaled, not clipped."""
    if image.mode == "L" and "transparency" not in image.info:  # the common case, first
        return np.asarray(image, dtype=np.uint8)
    deep = _deep_gray(image)
    if deep is not None:
        return deep
    image = _flattened(image)
    if image.mode != "L":
        try:
            if image.mode == "CMYK":
                image = image.convert("RGB")
            image = image.convert("L")
        except ValueError as exc:  # a mode Pillow cannot turn into grayscale
            raise ImageError(f"unsupported image mode {image.mode}: {exc}") from None
    return np.asarray(image, dtype=np.uint8)


def _to_colour_array(image: Image.Image) -> np.ndarray:
    """Any mode -> uint8 (H, W, 3) RGB, or (H, W) for a grayscale one. Transparency is
    laid on white; 16-bit is scaled, not clipped."""
    if image.mode in ("RGB", "L") and "transparency" not in image.info:  # the common cases
        return np.asarray(image, dtype=np.uint8)
    deep = _deep_gray(image)
    if deep is not None:
        return deep
    image = _flattened(image)
    if image.mode not in ("RGB", "L"):
        try:
            image = image.convert("RGB")
        except ValueError as exc:  # a mode Pillow cannot turn into RGB
            raise ImageError(f"unsupported image mode {image.mode}: {exc}") from None
    return np.asarray(image, dtype=np.uint8)


def goes_the_datasets_way(size: tuple[int, int], preparation: Preparation) -> bool:
    """Is a picture of ``size`` prepared as the dataset's own images are (grayscale,
    inverted if light, whole): 28x28 ones, and any with fit "full"?"""
    return size == (IMAGE_SIZE, IMAGE_SIZE) or preparation.fit == "full"


def to_model_image(image: Image.Image, preparation: Preparation | None = None) -> np.ndarray:
    """A decoded PIL image -> uint8 (28, 28), light garment on dark (see ``prepare``),
    turned upright as its EXIF orientation says."""
    preparation = preparation or Preparation()
    turn = orientation(image)
    width, height = image.size
    shown = (height, width) if turn >= 5 else (width, height)
    if goes_the_datasets_way(shown, preparation):
        pixels = _to_gray_array(image)
    else:
        pixels = _to_colour_array(image)
    return prepare(upright(pixels, turn), preparation)


@contextlib.contextmanager
def bomb_checks() -> Iterator[None]:
    """Make Pillow's decompression-bomb warning an error while images are read."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _draft(image: Image.Image, preparation: Preparation) -> None:
    """Let libjpeg shrink a large JPEG by 2, 4 or 8 while decoding (much faster), where
    only Python prepares the picture: for ``--fit full``, to no fewer than 28 pixels a
    side, in grayscale. A 28x28 JPEG is decoded in grayscale, as before #30. A photo is
    decoded whole, in colour: the photo model decodes whole in every client (Node, the
    browser), and libjpeg's scaled pixels changed the MLP's top-1 on 9 of 600 photos as
    taken (bench/photos.py's, against the graph on whole decodes), whole decodes on none."""
    if preparation.fit == "full" or image.size == (IMAGE_SIZE, IMAGE_SIZE):
        image.draft("L", (IMAGE_SIZE, IMAGE_SIZE))


def _decode_first_frame(
    path: str | os.PathLike[str] | io.BytesIO, preparation: Preparation
) -> Image.Image:
    """Open and decode the file's first frame (an opened image is at its first frame):
    every step that reads the file's bytes. JPEGs are drafted (``_draft``)."""
    image = Image.open(path)
    try:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageError(
                f"decompression bomb refused before decoding: {width}x{height} pixels "
                f"exceeds the {MAX_PIXELS:,}-pixel limit"
            )
        if image.format == "JPEG":
            _draft(image, preparation)
        image.load()
    except BaseException:
        image.close()
        raise
    return image


def load_image(path: str | os.PathLike[str], preparation: Preparation | None = None) -> np.ndarray:
    """Open, check and convert one image file to uint8 (28, 28), light garment on dark.

    Only what the file can cause becomes an ``ImageError``; a failure in the conversion
    of an image that decoded is a bug, and keeps its traceback.

    Raises:
        ImageError: with a one-line reason: not a file, unreadable, not an image,
            truncated or corrupt, an unsupported mode, or too many pixels (checked
            before decoding).
    """
    preparation = preparation or Preparation()
    with bomb_checks(), open_image(path, preparation) as image:
        return to_model_image(image, preparation)


def load_rgb(source: Source) -> np.ndarray:
    """A file (or its bytes) -> uint8 (h, w, 3) RGB, upright as its EXIF orientation says,
    transparency laid on white: the pixels fashion-infer prepares a photo from, and what a
    photo model (NAME_photo.onnx) takes.

    Raises:
        ImageError: as ``load_image``.
    """
    preparation = Preparation()
    data = source if isinstance(source, bytes) else read_file(source)
    with bomb_checks(), open_image(data, preparation) as image:
        if image.size == (IMAGE_SIZE, IMAGE_SIZE):  # decoded in grayscale: decode again
            image.close()
            image = Image.open(io.BytesIO(data))
            image.load()
        pixels = upright(_to_colour_array(image), orientation(image))
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels)


# Binary (a Windows flag); not waiting for a FIFO's writer (it then reads as empty).
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
_FIRST_READ = 1 << 16  # most images are smaller: one read takes them whole


def read_file(path: str | os.PathLike[str]) -> bytes:
    """A file's bytes, in three system calls when it is small (open, read, close: the
    common image costs a few microseconds); a larger one is checked to be a regular file
    before it is read on.

    Raises:
        ImageError: no such file, a broken symlink, permission denied, a directory, not a
            regular file (a device would never end; a FIFO, opened without waiting for a
            writer, reads as empty), or another read error.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise ImageError("broken symlink" if os.path.islink(path) else "no such file") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except IsADirectoryError:  # where a directory cannot be opened at all
        raise ImageError("is a directory, not an image file") from None
    except OSError as exc:
        raise ImageError(f"cannot open: {exc.strerror or exc}") from None
    try:
        data = os.read(fd, _FIRST_READ)
        if len(data) < _FIRST_READ:
            return data  # the whole file (a short read only ends a file: local files)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError("not a regular file")
        parts = [data]
        while chunk := os.read(fd, max(st.st_size - len(data), 1 << 20)):
            parts.append(chunk)
        return b"".join(parts)
    except IsADirectoryError:
        raise ImageError("is a directory, not an image file") from None
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def open_image(source: Source, preparation: Preparation) -> Image.Image:
    """Open a file (or a file's bytes) and decode its first frame, drafted for
    ``preparation`` (``_draft``); call it inside ``bomb_checks()``.

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
        return _decode_first_frame(readable, preparation)
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
        # Pillow's own limits (89,478,485 and twice that) come first on the largest: say
        # ours, the one that holds for every image
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(found.group(1)):,} pixels" if found else "the image"
        raise ImageError(
            f"decompression bomb refused before decoding: {pixels} exceeds the "
            f"{MAX_PIXELS:,}-pixel limit"
        ) from None
    except (OSError, SyntaxError, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"truncated or corrupt image: {first}") from None
    except Exception as exc:  # Pillow's format plugins raise many types on malformed bytes
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ImageError(f"corrupt image ({type(exc).__name__}: {first})") from None
