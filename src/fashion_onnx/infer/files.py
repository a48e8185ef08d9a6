"""Classify many image files: lazy discovery, parallel decoding and the engine, in order.

``classify_files`` is the one call behind ``fashion-infer`` and behind users' scripts:
it takes files, directories and globs, and yields ``FileBatch``es holding the
predictions and the per-file failures, chunk by chunk, in discovery order. Memory
stays flat however many files there are.

On the CPU each worker process decodes its chunk *and* runs its own single-threaded
engine, so only probabilities cross processes. On CUDA the workers only decode and the
one GPU session runs here.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.errors import ImageError
from fashion_onnx.infer.discover import find_images
from fashion_onnx.infer.images import Source, bomb_checks, draft_size, open_image, to_model_image
from fashion_onnx.infer.prepare import Preparation, light_borders
from fashion_onnx.infer.runtime import CPU

if TYPE_CHECKING:
    from fashion_onnx.infer.classifier import Classifier

SHAPE = (IMAGE_SIZE, IMAGE_SIZE)
CHUNK = 256  # files per task: amortises IPC and engine calls, small enough to balance
PARALLEL_MIN_FILES = 256  # below this, starting processes costs more than it saves
IN_FLIGHT_PER_WORKER = 4  # chunks queued per worker: keeps them busy, bounds memory


@dataclass(frozen=True)
class Failure:
    """One input that could not be classified, and why (one line)."""

    path: str
    reason: str


@dataclass(frozen=True)
class FileBatch:
    """Results for consecutive inputs, in discovery order."""

    paths: list[str]  # the files classified
    probabilities: np.ndarray  # (len(paths), 10) float32
    failures: list[Failure]  # inputs that could not be read or found

    def __len__(self) -> int:
        return len(self.paths) + len(self.failures)


@dataclass(frozen=True)
class DecodedChunk:
    """Images decoded from a list of sources; shared by the local and the Ray engine."""

    images: np.ndarray  # (k, 28, 28) uint8, light garment on dark: the sources that decoded
    errors: list[str | None]  # per source, in order: None if it decoded, else the reason

    def split(self, names: Sequence[str]) -> tuple[list[str], list[Failure]]:
        """(the names of the sources that decoded, a Failure for each other one)."""
        ok = [name for name, error in zip(names, self.errors, strict=True) if error is None]
        failures = [
            Failure(name, error)
            for name, error in zip(names, self.errors, strict=True)
            if error is not None
        ]
        return ok, failures


def decode_chunk(sources: Sequence[Source], preparation: Preparation) -> DecodedChunk:
    """Decode and prepare files (or files' bytes) one by one, as ``load_image`` would; a
    bad one costs only itself.

    FashionMNIST-like files (8-bit grayscale, 28x28) take a short path: their pixels are
    copied straight in, and the light-background check runs once for all of them.
    """
    images = np.empty((len(sources), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    plain = np.zeros(len(sources), dtype=bool)  # rows still to check for a light background
    errors: list[str | None] = []
    row = 0
    draft = draft_size(preparation)
    with bomb_checks():
        for source in sources:
            try:
                image = open_image(source, draft)
            except ImageError as exc:
                errors.append(str(exc))
                continue
            with image:
                if image.mode == "L" and image.size == SHAPE and "transparency" not in image.info:
                    images[row] = np.frombuffer(image.tobytes(), np.uint8).reshape(SHAPE)
                    plain[row] = True
                else:
                    images[row] = to_model_image(image, preparation)
            errors.append(None)
            row += 1
    images, plain = images[:row], plain[:row]
    invert = preparation.invert
    if invert != "never" and plain.any():
        flip = plain if invert == "always" else plain & light_borders(images)
        images[flip] = 255 - images[flip]
    return DecodedChunk(images, errors)


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# -- worker processes ---------------------------------------------------------------

_worker_engine: Classifier | None = None  # one per worker process, made by _start_worker


def _start_worker(model: bytes, batch_size: int, preparation: Preparation) -> None:
    from fashion_onnx.infer.classifier import Classifier

    global _worker_engine
    warnings.simplefilter("ignore")  # the parent has shown the model's warnings already
    _worker_engine = Classifier(
        model,
        device="cpu",
        threads=1,
        batch_size=batch_size,
        invert=preparation.invert,
        fit=preparation.fit,
    )


def _classify_in_worker(paths: list[str]) -> tuple[list[str], np.ndarray, list[Failure]]:
    assert _worker_engine is not None, "the pool's initializer made the engine"
    decoded = decode_chunk(paths, _worker_engine.preparation)
    ok, failures = decoded.split(paths)
    return ok, _worker_engine.predict_pixels(decoded.images), failures


def _pool(
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[object, ...] = (),
) -> Pool:
    # fork where it is safe and cheapest (Linux): workers start without re-importing.
    method = "fork" if sys.platform.startswith("linux") else None
    return mp.get_context(method).Pool(workers, initializer, initargs)


# -- scheduling ---------------------------------------------------------------------

Task = tuple[list[str], list[Failure]]  # files to classify, discovery problems found before them
R = TypeVar("R")


def _tasks(inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> Iterator[Task]:
    """Chunks of up to CHUNK paths, each with the discovery problems found along the way."""
    paths: list[str] = []
    problems: list[Failure] = []
    for path, problem in find_images(inputs):
        if problem is None:
            paths.append(path)
            if len(paths) == CHUNK:
                yield paths, problems
                paths, problems = [], []
        else:
            problems.append(Failure(path, problem))
    if paths or problems:
        yield paths, problems


def _in_order(
    pool: Pool, work: Callable[[list[str]], R], tasks: Iterator[Task], window: int
) -> Iterator[tuple[list[Failure], R]]:
    """Run ``work`` on each task's paths in ``pool``, at most ``window`` tasks in flight;
    yield (the task's discovery problems, its result) in task order."""
    pending: deque[tuple[list[Failure], AsyncResult[R]]] = deque()
    for paths, problems in tasks:
        pending.append((problems, pool.apply_async(work, (paths,))))
        if len(pending) >= window:
            done_problems, result = pending.popleft()
            yield done_problems, result.get()
    while pending:
        done_problems, result = pending.popleft()
        yield done_problems, result.get()


def classify_files(
    classifier: Classifier,
    inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    workers: int | None = None,
) -> Iterator[FileBatch]:
    """Classify every image under ``inputs``; a bad file costs only itself.

    Args:
        classifier: the model, device and settings to use.
        inputs: files (taken whatever their suffix), directories (walked recursively for
            image suffixes) and globs (``**`` recurses); or one of them, as a str or a
            PathLike. A directory that cannot be listed is a failure, like a missing file.
        workers: decoding processes; None uses every CPU this process may use, 1 decodes
            here. Fewer than 256 files are always decoded here.

    Yields:
        ``FileBatch``es in discovery order (see ``fashion_onnx.infer.discover``); together
        they name every input exactly once, as a prediction or as a failure.
    """
    workers = default_workers() if workers is None else workers
    tasks = _tasks(inputs)
    head = list(itertools.islice(tasks, -(-PARALLEL_MIN_FILES // CHUNK)))
    tasks = itertools.chain(head, tasks)
    parallel = workers > 1 and sum(len(paths) for paths, _ in head) >= PARALLEL_MIN_FILES
    if not parallel:
        for paths, problems in tasks:
            decoded = decode_chunk(paths, classifier.preparation)
            ok, failures = decoded.split(paths)
            yield FileBatch(ok, classifier.predict_pixels(decoded.images), problems + failures)
        return
    window = IN_FLIGHT_PER_WORKER * workers
    if classifier.provider == CPU:
        settings = (classifier.model_bytes, classifier.batch_size, classifier.preparation)
        with _pool(workers, initializer=_start_worker, initargs=settings) as pool:
            for problems, (paths, probs, failures) in _in_order(
                pool, _classify_in_worker, tasks, window
            ):
                yield FileBatch(paths, probs, problems + failures)
    else:  # one GPU session, here; the workers decode
        decode = _DecodeTask(classifier.preparation)
        with _pool(workers) as pool:
            for problems, (ok, images, failures) in _in_order(pool, decode, tasks, window):
                yield FileBatch(ok, classifier.predict_pixels(images), problems + failures)


@dataclass(frozen=True)
class _DecodeTask:
    """A picklable ``paths -> (decoded paths, images, failures)`` for decode-only workers."""

    preparation: Preparation

    def __call__(self, paths: list[str]) -> tuple[list[str], np.ndarray, list[Failure]]:
        decoded = decode_chunk(paths, self.preparation)
        ok, failures = decoded.split(paths)
        return ok, decoded.images, failures
