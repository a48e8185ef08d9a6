"""Image arrays as inputs: IDX files (as FashionMNIST ships them, gzipped or not), ``.npy``
and ``.npz``. Each is read in slices, never whole: memory-mapped where the bytes lie
uncompressed in the file (the workers map their own slice), streamed in order where they
are compressed (this process inflates them and hands the pixels out).

Accepted: uint8 ``[N,28,28]``, ``[N,784]`` or ``[N,1,28,28]``, or floats in [0, 1] of the
same shapes. Rows are named ``FILE[i]`` (``FILE:ARRAY[i]`` for ``.npz``), 0-based. In an
``.npz``, an array named ``labels`` holds the class indices of its images, in order.

One reader for ``fashion-infer`` (chunks, ``array_chunks``) and ``fashion-eval`` (whole,
``read_images``), and one rule for labels by position: as many as the images
(``check_label_count``).
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.errors import InvalidArgumentError

PIXELS = IMAGE_SIZE * IMAGE_SIZE
LABELS_MEMBER = "labels.npy"  # an .npz's class indices, never images
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801  # ubyte, 3 and 1 dimensions
Stream = IO[bytes] | io.BufferedIOBase  # open(), gzip.open() or ZipFile.open()
ACCEPTED = "uint8 or float [N,28,28], [N,784] or [N,1,28,28]"


class ArrayInputError(InvalidArgumentError):
    """An array file that cannot be classified (one line: the file and what is wrong)."""


def is_array_file(path: str) -> bool:
    """Whether ``path`` names an array input by its name: ``.npy``, ``.npz``, or an IDX
    file (``*-ubyte``, ``*.idx``, ``*.idx3``, each possibly ``.gz``)."""
    name = os.path.basename(path).lower()
    if name.endswith((".npy", ".npz")):
        return True
    name = name.removesuffix(".gz")
    return name.endswith(("-ubyte", ".idx", ".idx3", ".idx1"))


@dataclass(frozen=True)
class ArraySlice:
    """Images [start, stop) of an array that lies uncompressed at ``offset`` in ``path``:
    a chunk the worker reads itself, by memory map."""

    name: str  # FILE or FILE:ARRAY, as the rows are named
    path: str
    offset: int
    count: int  # images in the whole array
    dtype: str
    start: int
    stop: int
    base: int  # the index of image ``start`` among all the run's array images (--labels)

    def names(self) -> list[str]:
        return [f"{self.name}[{i}]" for i in range(self.start, self.stop)]

    def images(self) -> np.ndarray:
        """(stop - start, 28, 28), copied out of the map."""
        whole = np.memmap(self.path, self.dtype, "r", self.offset, (self.count, PIXELS))
        return _checked(np.array(whole[self.start : self.stop]), self.name, self.start)


@dataclass(frozen=True)
class ArrayPixels:
    """Images [start, start + len) of a compressed array, inflated here: a chunk that
    carries its pixels."""

    name: str
    start: int
    pixels: np.ndarray  # (n, 784)
    base: int

    def names(self) -> list[str]:
        return [f"{self.name}[{i}]" for i in range(self.start, self.start + len(self.pixels))]

    def images(self) -> np.ndarray:
        return _checked(self.pixels, self.name, self.start)


ArrayChunk = ArraySlice | ArrayPixels


def _checked(flat: np.ndarray, name: str, start: int) -> np.ndarray:
    """(n, 784) -> (n, 28, 28); floats must lie in [0, 1] (checked per slice, as read)."""
    if (
        flat.dtype.kind == "f"
        and flat.size
        and not (np.isfinite(flat).all() and 0 <= flat.min() and flat.max() <= 1)
    ):
        raise ArrayInputError(
            f"{name}: float images must lie in [0, 1] (images {start}..{start + len(flat) - 1} "
            "do not); divide by 255 or pass uint8"
        )
    return flat.reshape(len(flat), IMAGE_SIZE, IMAGE_SIZE)


@dataclass(frozen=True)
class _Layout:
    """Where an array's images are and what they are."""

    count: int
    dtype: np.dtype
    offset: int | None  # byte offset in the file when stored uncompressed, else None


def _layout(shape: tuple[int, ...], dtype: np.dtype, where: str) -> tuple[int, np.dtype]:
    if dtype.hasobject:
        raise ArrayInputError(f"{where}: an object array (pickled data), refused; save numbers")
    if dtype != np.uint8 and dtype.kind != "f":
        raise ArrayInputError(f"{where}: dtype {dtype}, expected {ACCEPTED}")
    if shape[1:] not in ((IMAGE_SIZE, IMAGE_SIZE), (PIXELS,), (1, IMAGE_SIZE, IMAGE_SIZE)):
        raise ArrayInputError(f"{where}: shape {list(shape)}, expected {ACCEPTED}")
    return shape[0], dtype


def _npy_header(handle: Stream, where: str) -> tuple[int, np.dtype]:
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not read here")
    except (ValueError, OSError, EOFError) as exc:
        raise ArrayInputError(f"{where}: not a readable .npy array ({exc})") from None
    if fortran and len(shape) > 1:
        raise ArrayInputError(f"{where}: a Fortran-ordered array; save it in C order")
    return _layout(tuple(shape), np.dtype(dtype), where)


def _check_size(where: str, available: int, needed: int) -> None:
    if available < needed:
        raise ArrayInputError(
            f"{where}: truncated: {available:,} bytes of pixels, {needed:,} expected"
        )


def _npy(path: str, base: int, size: int, floats_only: bool) -> Iterator[ArraySlice]:
    with open(path, "rb") as handle:
        count, dtype = _npy_header(handle, path)
        offset = handle.tell()
    _check_size(path, os.path.getsize(path) - offset, count * PIXELS * dtype.itemsize)
    if floats_only and dtype.kind != "f":
        return
    for start in range(0, count, size):
        yield ArraySlice(
            path, path, offset, count, dtype.str, start, min(start + size, count), base + start
        )


def _idx_header(handle: Stream, where: str) -> int:
    head = handle.read(16)
    if len(head) < 16:
        raise ArrayInputError(f"{where}: not an IDX image file (too short)")
    magic, count, rows, cols = struct.unpack(">IIII", head)
    if magic != IDX_IMAGES:
        raise ArrayInputError(
            f"{where}: magic number {magic:#010x}, not an IDX image file ({IDX_IMAGES:#010x})"
        )
    if (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE):
        raise ArrayInputError(f"{where}: images of {rows}x{cols}, expected 28x28")
    return int(count)


def _streamed(
    name: str, handle: Stream, count: int, dtype: np.dtype, base: int, size: int
) -> Iterator[ArrayPixels]:
    """Read ``count`` images of ``dtype`` from ``handle`` in order, ``size`` at a time."""
    step = PIXELS * dtype.itemsize
    for start in range(0, count, size):
        n = min(size, count - start)
        data = handle.read(n * step)
        if len(data) < n * step:
            _check_size(name, start * step + len(data), count * step)
        yield ArrayPixels(name, start, np.frombuffer(data, dtype).reshape(n, PIXELS), base + start)


def _idx(path: str, base: int, size: int) -> Iterator[ArrayChunk]:
    if path.lower().endswith(".gz"):
        with open(path, "rb") as raw:  # the gzip trailer holds the inflated size (mod 2**32)
            raw.seek(-4, os.SEEK_END)
            inflated = struct.unpack("<I", raw.read(4))[0]
        with gzip.open(path, "rb") as handle:
            count = _idx_header(handle, path)
            expected = (16 + count * PIXELS) % 2**32
            if inflated != expected:
                raise ArrayInputError(f"{path}: truncated or not one gzip stream")
            yield from _streamed(path, handle, count, np.dtype(np.uint8), base, size)
        return
    with open(path, "rb") as handle:
        count = _idx_header(handle, path)
    _check_size(path, os.path.getsize(path) - 16, count * PIXELS)
    for start in range(0, count, size):
        yield ArraySlice(
            path, path, 16, count, "|u1", start, min(start + size, count), base + start
        )


def _npz(path: str, base: int, size: int, floats_only: bool) -> Iterator[ArrayChunk]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArrayInputError(f"{path}: not a readable .npz archive ({exc})") from None
    with archive:
        members = _image_members(archive)
        if not members:
            raise ArrayInputError(f"{path}: no arrays of images in this .npz")
        for member in members:
            name = f"{path}:{member.filename.removesuffix('.npy')}"
            with archive.open(member) as handle:
                count, dtype = _npy_header(handle, name)
                header = handle.tell()
                _check_size(name, member.file_size - header, count * PIXELS * dtype.itemsize)
                if floats_only and dtype.kind != "f":
                    continue
                if member.compress_type != zipfile.ZIP_STORED:
                    yield from _streamed(name, handle, count, dtype, base, size)
                    base += count
                    continue
            with open(path, "rb") as raw:  # a stored member: map it where it lies
                raw.seek(member.header_offset + 26)
                name_len, extra_len = struct.unpack("<HH", raw.read(4))
            offset = member.header_offset + 30 + name_len + extra_len + header
            for start in range(0, count, size):
                yield ArraySlice(
                    name,
                    path,
                    offset,
                    count,
                    dtype.str,
                    start,
                    min(start + size, count),
                    base + start,
                )
            base += count


def _image_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return [
        m for m in archive.infolist() if m.filename.endswith(".npy") and m.filename != LABELS_MEMBER
    ]


def array_chunks(
    path: str, base: int, size: int, *, floats_only: bool = False
) -> Iterator[ArrayChunk]:
    """The chunks of one array file, ``size`` images each; ``base``: how many array images
    came before it in this run. Its header is checked at the first ``next``.
    ``floats_only``: the chunks of its float arrays only (to check their values before a
    run; the uint8 ones, whose every value is valid, are neither read nor inflated).

    Raises:
        ArrayInputError: a wrong magic number, a truncated array, an object array, a shape
            or dtype that is not an image batch, or an unreadable file: one line.
    """
    lower = path.lower()
    try:
        if lower.endswith(".npy"):
            yield from _npy(path, base, size, floats_only)
        elif lower.endswith(".npz"):
            yield from _npz(path, base, size, floats_only)
        elif floats_only:  # IDX holds uint8: its header is all there is to check
            next(_idx(path, base, 1), None)
        else:
            yield from _idx(path, base, size)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ArrayInputError(f"{path}: {reason}") from None
    except zlib.error as exc:  # compressed bytes that do not inflate
        raise ArrayInputError(f"{path}: corrupt compressed data ({exc})") from None


def count_images(path: str) -> int:
    """How many images an array file holds, from its headers alone.

    Raises:
        ArrayInputError: as ``array_chunks``.
    """
    lower = path.lower()
    try:
        if lower.endswith(".npy"):
            with open(path, "rb") as handle:
                return _npy_header(handle, path)[0]
        if lower.endswith(".npz"):
            with zipfile.ZipFile(path) as archive:
                total = 0
                for member in _image_members(archive):
                    with archive.open(member) as handle:
                        total += _npy_header(handle, f"{path}:{member.filename}")[0]
                return total
        with (gzip.open if lower.endswith(".gz") else open)(path, "rb") as handle:
            return _idx_header(handle, path)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ArrayInputError(f"{path}: {reason}") from None


def read_images(path: str) -> np.ndarray:
    """Every image of an array file, (N, 28, 28): uint8, or float32 in [0, 1] if any of its
    arrays is float (uint8 ones then divided by 255), checked as ``array_chunks`` does."""
    parts = [chunk.images() for chunk in array_chunks(path, 0, 65_536)]
    if not parts:
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    if any(p.dtype.kind == "f" for p in parts):
        parts = [p.astype(np.float32) / (255 if p.dtype == np.uint8 else 1) for p in parts]
    return np.concatenate(parts)


def npz_labels(path: str) -> np.ndarray | None:
    """The class indices an ``.npz`` holds (its ``labels`` array), or None.

    Raises:
        ArrayInputError: unreadable, or not class indices 0..9.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            if LABELS_MEMBER not in archive.namelist():
                return None
            with archive.open(LABELS_MEMBER) as handle:
                labels = np.lib.format.read_array(handle, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise ArrayInputError(f"{path}: labels: {getattr(exc, 'strerror', None) or exc}") from None
    return _class_indices(labels, f"{path}:labels")


def check_label_count(labels: int, images: int, where: str) -> None:
    """Labels by position name the images in order: as many of each, or refused.

    Raises:
        InvalidArgumentError: the counts differ.
    """
    if labels != images:
        raise InvalidArgumentError(
            f"{where}: {labels:,} labels for {images:,} array images; labels are matched to "
            "the images in order, so there must be one per image"
        )


def read_labels_array(path: str) -> np.ndarray:
    """Class indices from an IDX label file (gzipped or not), a ``.npy``, or an ``.npz``'s
    ``labels`` array: (N,) int64.

    Raises:
        ArrayInputError: not such a file, or labels outside 0..9.
    """
    if path.lower().endswith(".npz"):
        found = npz_labels(path)
        if found is None:
            raise ArrayInputError(f"{path}: no array named labels in this .npz")
        return found
    try:
        if path.lower().endswith(".npy"):
            labels = np.load(path, allow_pickle=False)
        else:
            opener = gzip.open if path.lower().endswith(".gz") else open
            with opener(path, "rb") as handle:
                head = handle.read(8)
                if len(head) < 8 or struct.unpack(">I", head[:4])[0] != IDX_LABELS:
                    raise ArrayInputError(f"{path}: not an IDX label file (magic number)")
                (count,) = struct.unpack(">I", head[4:])
                labels = np.frombuffer(handle.read(count), np.uint8)
                _check_size(path, len(labels), count)
    except (OSError, EOFError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ArrayInputError(f"{path}: {reason}") from None
    return _class_indices(labels, path)


def _class_indices(labels: np.ndarray, path: str) -> np.ndarray:
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ArrayInputError(
            f"{path}: labels of shape {list(labels.shape)} and dtype "
            f"{labels.dtype}, expected integers [N]"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ArrayInputError(f"{path}: labels must be class indices 0..9")
    return np.asarray(labels, dtype=np.int64)
