"""Inputs -> chunks, the unit of work everywhere: of scheduling, of the rendered output
text, of what crosses a process boundary.

Files, directories and globs are discovered lazily (``discover``) and grouped into chunks
of paths; array files (``arrays``) are cut into chunks of their own. Chunks come in input
order, so rows do too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from fashion_onnx.infer.arrays import ArrayChunk, array_chunks, is_array_file
from fashion_onnx.infer.decode import Failure
from fashion_onnx.infer.discover import Walker, as_inputs

PATH_CHUNK = 512  # files a chunk: amortises scheduling and engine calls, small enough to balance
ARRAY_CHUNK = 2048  # array images a chunk: no decoding, so larger


@dataclass(frozen=True)
class PathChunk:
    """Files to classify, and the discovery problems met before them (reported first)."""

    paths: list[str]
    problems: list[Failure] = field(default_factory=list)


Chunk = PathChunk | ArrayChunk


def size_of(chunk: Chunk) -> int:
    """Images in ``chunk``."""
    if isinstance(chunk, PathChunk):
        return len(chunk.paths)
    return len(chunk.names())


def array_inputs(inputs: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The inputs that are array files (IDX, .npy, .npz) rather than images."""
    return [os.fspath(i) for i in inputs if is_array_file(os.fspath(i)) and os.path.isfile(i)]


def check_arrays(inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Read every array input's header now, and the values of its float arrays (which must
    lie in [0, 1]), so that a bad one stops the run before any row is written; uint8
    arrays cost one header read. Raises ArrayInputError."""
    for path in array_inputs(inputs):
        for chunk in array_chunks(path, 0, ARRAY_CHUNK, floats_only=True):
            chunk.images()


def chunks(
    inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    path_chunk: int = PATH_CHUNK,
    array_chunk: int = ARRAY_CHUNK,
) -> Iterator[Chunk]:
    """Every input as chunks, in input order.

    Raises:
        ArrayInputError: an array input that cannot be classified (see ``arrays``).
    """
    base = 0  # array images so far
    paths: list[str] = []
    problems: list[Failure] = []
    with Walker() as walker:
        for item in as_inputs(inputs):
            arg = os.fspath(item)
            if is_array_file(arg) and os.path.isfile(arg):
                if paths or problems:
                    yield PathChunk(paths, problems)
                    paths, problems = [], []
                for array_chunk_ in array_chunks(arg, base, array_chunk):
                    yield array_chunk_
                    base = array_chunk_.base + size_of(array_chunk_)
                continue
            for found, problem in walker.runs(arg):
                if problem is not None:
                    problems.append(Failure(*problem))
                paths.extend(found)
                while len(paths) >= path_chunk:
                    yield PathChunk(paths[:path_chunk], problems)
                    paths, problems = paths[path_chunk:], []
    if paths or problems:
        yield PathChunk(paths, problems)
