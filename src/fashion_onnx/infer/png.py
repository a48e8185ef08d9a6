"""The common PNG, decoded natively by libspng (the ``pyspng`` wheel), pixel for pixel as
Pillow decodes it: 8- or 16-bit grayscale or RGB, no transparency, no animation, no EXIF.

A 28x28 PNG costs Pillow about 45 us, mostly per-call Python overhead; libspng decodes it
from bytes in 6-7 us. Anything else (palettes, transparency, animation, a chunk whose CRC is
wrong, a file libspng refuses, or no pyspng on this platform) returns None, and Pillow
decodes it with every guard it has: the outcome is then Pillow's, error or pixels.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

try:  # an optional speed-up: without the wheel, Pillow decodes every file
    from pyspng import _pyspng_c  # the binding itself: pyspng.load adds a microsecond

    spng: Any = _pyspng_c
except ImportError:  # pragma: no cover - exercised by the tests with the import blocked
    spng = None

SIGNATURE = b"\x89PNG\r\n\x1a\n"
GRAY, RGB = 0, 2  # the PNG colour types taken here
# Chunks that change what Pillow makes of the pixels, which frame it shows, or which way
# up they are (eXIf: an orientation, which images.py reads from Pillow).
PILLOW_ONLY = frozenset({b"tRNS", b"acTL", b"fcTL", b"PLTE", b"eXIf"})


def _chunks_before_idat_are_plain(data: bytes) -> bool:
    """Walk the chunks from IHDR to the first IDAT: each CRC right (Pillow checks them and
    refuses a file when one is wrong; libspng is told to ignore them) and none that Pillow
    treats specially."""
    if data[37:41] == b"IDAT":  # the common file: IHDR, then the pixels
        return zlib.crc32(data[12:29]) == int.from_bytes(data[29:33], "big")
    pos = 8
    end = len(data)
    while pos + 8 <= end:
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IDAT":
            return pos > 8  # IHDR came first
        if kind in PILLOW_ONLY or pos + 12 + length > end:
            return False
        stored = int.from_bytes(data[pos + 8 + length : pos + 12 + length], "big")
        if zlib.crc32(data[pos + 4 : pos + 8 + length]) != stored:
            return False
        pos += 12 + length
    return False


def decode_png(data: bytes, max_pixels: int) -> np.ndarray | None:
    """A PNG's bytes -> its pixels as Pillow decodes them: uint8 (h, w) grayscale or
    (h, w, 3) RGB (16-bit samples scaled as ``images`` scales Pillow's), or None when
    the file is not the common case this path takes (then Pillow decodes it)."""
    if spng is None or len(data) < 45 or data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height, depth, color, _, _, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    if color not in (GRAY, RGB) or depth not in (8, 16) or interlace > 1:
        return None
    if not 0 < width * height <= max_pixels or not _chunks_before_idat_are_plain(data):
        return None
    try:  # (h, w, channels), uint8 or uint16 (16-bit gray comes with an alpha channel)
        pixels = spng.spng_decode_image_bytes(data, spng.SPNG_FMT_AUTO)
    except Exception:  # libspng refused it: Pillow decides (it is more lenient)
        return None
    if color == GRAY:
        if depth == 8:
            return pixels[:, :, 0]  # type: ignore[no-any-return]  # contiguous: one channel
        return np.asarray(pixels[:, :, 0] // 257, dtype=np.uint8)
    if depth == 16:  # Pillow reads 16-bit RGB as 8-bit: the high byte of each sample
        return np.asarray(pixels[..., :3] >> 8, dtype=np.uint8)
    return pixels  # type: ignore[no-any-return]


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 (h, w, 3) RGB -> uint8 (h, w): Pillow's RGB -> L, ITU-R 601-2 luma in 16-bit
    fixed point, rounded (Convert.c, L24)."""
    wide = rgb.astype(np.uint32)
    mixed = wide[..., 0] * 19595 + wide[..., 1] * 38470 + wide[..., 2] * 7471 + 0x8000
    return np.asarray(mixed >> 16, dtype=np.uint8)


def decode_png_gray(data: bytes, max_pixels: int) -> np.ndarray | None:
    """``decode_png`` turned to grayscale: equal to Pillow's decode then ``convert("L")``."""
    pixels = decode_png(data, max_pixels)
    if pixels is None or pixels.ndim == 2:
        return pixels
    return luma(pixels)
