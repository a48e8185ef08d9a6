"""Decode image files in parallel worker processes, in order, a chunk at a time.

Pillow decodes a 28x28 PNG in about 60 us here and the engine classifies one in
about 7 us, so decoding is the bottleneck: spread it over processes and keep the
engine fed with whole chunks.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.errors import ImageError
from fashion_onnx.infer.images import Invert, load_image

CHUNK = 128  # files per task: big enough to hide IPC, small enough to balance
PARALLEL_MIN_FILES = 256  # below this, starting processes costs more than it saves


@dataclass(frozen=True)
class DecodedChunk:
    paths: list[str]  # the chunk's files, in input order
    images: np.ndarray  # (k, 28, 28) uint8 for the files that decoded
    ok: np.ndarray  # (len(paths),) bool: which files are in ``images``
    errors: list[tuple[str, str]]  # (path, reason) for the others


def decode_chunk(paths: Sequence[str], invert: Invert) -> DecodedChunk:
    images = np.empty((len(paths), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)
    errors: list[tuple[str, str]] = []
    for i, path in enumerate(paths):
        try:
            images[i] = load_image(path, invert)
            ok[i] = True
        except ImageError as exc:
            errors.append((path, str(exc)))
    return DecodedChunk(list(paths), images[ok], ok, errors)


def _decode_task(args: tuple[list[str], Invert]) -> DecodedChunk:
    return decode_chunk(*args)


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class DecodePool:
    """Decoder worker processes, reusable across calls.

    Uses Python's default start method (fork on Linux up to 3.13). The CLI creates the
    pool before the onnxruntime session, so workers are forked from a process that has
    no engine threads yet.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else workers
        self._pool = mp.get_context().Pool(processes=self.workers)

    def imap(self, chunks: list[tuple[list[str], Invert]]) -> Iterator[DecodedChunk]:
        return self._pool.imap(_decode_task, chunks)

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wants_parallel(count: int, workers: int | None) -> bool:
    """Whether ``count`` files are worth worker processes."""
    workers = default_workers() if workers is None else workers
    return workers > 1 and count >= PARALLEL_MIN_FILES


def decode_files(
    paths: Sequence[str],
    invert: Invert = "auto",
    workers: int | None = None,
    pool: DecodePool | None = None,
) -> Iterator[DecodedChunk]:
    """Yield ``DecodedChunk``s covering ``paths`` in order.

    Uses ``pool`` when given; otherwise ``workers`` processes (default: the CPUs this
    process may use) when there are enough files to pay for them, else this process.
    """
    chunks = [(list(paths[i : i + CHUNK]), invert) for i in range(0, len(paths), CHUNK)]
    if pool is not None:
        yield from pool.imap(chunks)
    elif wants_parallel(len(paths), workers):
        with DecodePool(min(workers or default_workers(), len(chunks))) as own:
            yield from own.imap(chunks)
    else:
        for chunk in chunks:
            yield _decode_task(chunk)
