"""Inputs -> chunks, the unit of work everywhere: of scheduling, of the rendered output
text, of what crosses a process boundary.

Files, directories and globs are discovered lazily (``discover``) and grouped into chunks
of paths; array files (``arrays``) are cut into chunks of their own. Chunks come in input
order, so rows do too.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from fashion_onnx.infer.arrays import ArrayChunk, array_chunks, count_images, is_array_file
from fashion_onnx.infer.decode import Failure
from fashion_onnx.infer.discover import Walker, as_inputs, find_image_runs

PATH_CHUNK = 512  # files a chunk: amortises scheduling and engine calls, small enough to balance
ARRAY_CHUNK = 2048  # array images a chunk: no decoding, so larger


@dataclass(frozen=True)
class PathChunk:
    """Files to classify, and the discovery problems met before them (reported first).

    The paths travel "\\0"-joined (no path holds a NUL): one string to pickle, split only
    where the chunk is worked on, so handing out chunks costs the main process nothing per
    file.
    """

    joined: str  # the paths, "\\0"-joined
    count: int  # how many
    problems: list[Failure] = field(default_factory=list)

    @classmethod
    def of(cls, paths: list[str], problems: list[Failure] | None = None) -> PathChunk:
        return cls("\0".join(paths), len(paths), problems or [])

    @property
    def paths(self) -> list[str]:
        return self.joined.split("\0") if self.count else []


Chunk = PathChunk | ArrayChunk


def size_of(chunk: Chunk) -> int:
    """Images in ``chunk``."""
    if isinstance(chunk, PathChunk):
        return chunk.count
    return len(chunk.names())


def chunk_names(chunk: Chunk) -> list[str]:
    """What a chunk's key is made of: its problems and files (an array chunk: its range)."""
    if isinstance(chunk, PathChunk):
        return [p.path for p in chunk.problems] + chunk.paths
    return [f"{chunk.name}[{chunk.start}:{chunk.start + size_of(chunk)}]"]


ChunkKey = tuple[int, str]  # (names in a chunk, key_of them)


def chunk_key(chunk: Chunk) -> ChunkKey:
    """How the resume journal knows a chunk again."""
    return names_key(chunk_names(chunk))


def names_key(names: list[str]) -> ChunkKey:
    """The key of a chunk made of ``names`` (the Ray engine's batches are such chunks)."""
    return len(names), key_of(names)


def key_of(names: list[str]) -> str:
    """A short digest of ``names`` in any order (the Ray engine's batches keep failures
    apart from the rest): the resume journal's check that a chunk is the one it was."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update("\0".join(sorted(names)).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def array_inputs(inputs: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The inputs that are array files (IDX, .npy, .npz) rather than images."""
    return [os.fspath(i) for i in inputs if is_array_file(os.fspath(i)) and os.path.isfile(i)]


def check_arrays(inputs: Iterable[str | os.PathLike[str]]) -> int:
    """Read every array input's header now, and the values of its float arrays (which must
    lie in [0, 1]), so that a bad one stops the run before any row is written; uint8
    arrays cost one header read. Returns how many images they hold. Raises ArrayInputError."""
    total = 0
    for path in array_inputs(inputs):
        for chunk in array_chunks(path, 0, ARRAY_CHUNK, floats_only=True):
            chunk.images()
        total += count_images(path)  # headers read again, once they are known to be good
    return total


def chunks(
    inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    path_chunk: int = PATH_CHUNK,
    array_chunk: int = ARRAY_CHUNK,
) -> Iterator[Chunk]:
    """Every input as chunks, in input order: a directory's or a glob's files in chunks of
    ``path_chunk`` that the walker process cuts (the last one may be short); files named
    one by one gathered into chunks here.

    Raises:
        ArrayInputError: an array input that cannot be classified (see ``arrays``).
    """
    base = 0  # array images so far
    paths: list[str] = []  # files named one by one, not yet in a chunk
    problems: list[Failure] = []
    with Walker() as walker:
        for item in as_inputs(inputs):
            arg = os.fspath(item)
            array = is_array_file(arg) and os.path.isfile(arg)
            walked = not array and walker.takes(arg)
            if not (array or walked):  # a file (or a missing one), found here
                for found, problem in find_image_runs([arg]):
                    if problem is not None:
                        problems.append(Failure(*problem))
                    paths.extend(found)
                if len(paths) >= path_chunk:
                    yield PathChunk.of(paths, problems)
                    paths, problems = [], []
                continue
            if paths or problems:
                yield PathChunk.of(paths, problems)
                paths, problems = [], []
            if array:
                for array_chunk_ in array_chunks(arg, base, array_chunk):
                    yield array_chunk_
                    base = array_chunk_.base + size_of(array_chunk_)
            else:
                for joined, count, found_problems in walker.chunks(arg, path_chunk):
                    yield PathChunk(joined, count, [Failure(*p) for p in found_problems])
    if paths or problems:
        yield PathChunk.of(paths, problems)
