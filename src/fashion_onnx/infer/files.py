"""Classify many files and arrays: chunks handed to worker processes, results in order.

``run_job`` is the local scheduler behind ``fashion-infer`` and ``classify_files``: it hands
out chunks (``sources``), at most a few per worker in flight, and yields each finished
chunk (``work.Done``) in input order. The workers do every per-image step (``work``);
this process only moves chunks, so it is no bottleneck however many cores there are.
Memory stays flat however many files there are.

On the CPU each worker runs its own single-threaded runner. On CUDA the workers decode and
the one GPU session runs here.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fashion_onnx.infer.decode import Failure
from fashion_onnx.infer.pool import OrderedPool, WorkerDied
from fashion_onnx.infer.prepare import Preparation
from fashion_onnx.infer.runner import ModelRunner
from fashion_onnx.infer.runtime import CPU
from fashion_onnx.infer.sources import Chunk, PathChunk, chunk_key, chunks, size_of
from fashion_onnx.infer.work import Counts, Decoded, Done, Job, decode, finish

PARALLEL_MIN_FILES = 256  # below this, starting processes costs more than it saves
IN_FLIGHT_PER_WORKER = 4  # chunks queued per worker: keeps them busy, bounds memory

__all__ = ["Failure", "FileBatch", "classify_files", "default_workers", "run_job"]


@dataclass(frozen=True)
class FileBatch:
    """Results for consecutive inputs, in discovery order."""

    paths: list[str]  # the files (or array images, FILE[i]) classified
    probabilities: np.ndarray  # (len(paths), 10) float32
    failures: list[Failure]  # inputs that could not be read or found

    def __len__(self) -> int:
        return len(self.paths) + len(self.failures)


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# -- worker processes ---------------------------------------------------------------

_job: Job | None = None  # the run's settings, set in each worker by _start_worker
_runner: ModelRunner | None = None  # the worker's own runner (CPU runs only)


def _start_worker(job: Job, model: tuple[bytes, str, int] | None) -> None:
    global _job, _runner
    warnings.simplefilter("ignore")  # the parent has shown the model's warnings already
    _job = job
    if model is not None:
        model_bytes, source, batch_size = model
        _runner = ModelRunner(model_bytes, source, device="cpu", batch_size=batch_size, threads=1)


def _finish_in_worker(chunk: Chunk) -> Done:
    assert _job is not None and _runner is not None, "the pool's initializer set them"
    return finish(_job, _runner, decode(chunk, _job))


def _decode_in_worker(chunk: Chunk) -> Decoded:
    assert _job is not None, "the pool's initializer set it"
    return decode(chunk, _job)


def _lost(died: WorkerDied) -> Done:
    """A chunk that killed two worker processes (a decoder crashing on a file, the OOM
    killer): each of its images is a failure, and the run goes on."""
    chunk: Chunk = died.task  # type: ignore[assignment]
    names = chunk.paths if isinstance(chunk, PathChunk) else chunk.names()
    problems = chunk.problems if isinstance(chunk, PathChunk) else []
    reason = f"not classified: {died}"
    failures = problems + [Failure(name, reason) for name in names]
    counts = Counts(failed=len(failures))
    return Done([], None, failures, "", counts, chunk_key(chunk))  # no rows


# -- scheduling ---------------------------------------------------------------------


def run_job(
    job: Job, tasks: Iterable[Chunk], runner: ModelRunner, workers: int | None = None
) -> Iterator[Done]:
    """Finish every chunk of ``tasks`` with ``job``; yield them in order.

    Args:
        job: the preparation, and how to render and judge rows (or not).
        tasks: the chunks (``sources.chunks``), consumed lazily.
        runner: the model; the workers make their own copies of a CPU runner, a CUDA one
            runs here.
        workers: processes; None uses every CPU this process may use, 1 works here.
            Fewer than 256 images are always done here.
    """
    workers = default_workers() if workers is None else workers
    stream = iter(tasks)
    head: list[Chunk] = []
    for chunk in stream:  # enough to tell whether processes pay off
        head.append(chunk)
        if sum(map(size_of, head)) >= PARALLEL_MIN_FILES:
            break
    remaining = itertools.chain(head, stream)
    if workers <= 1 or sum(map(size_of, head)) < PARALLEL_MIN_FILES:
        for chunk in remaining:
            yield finish(job, runner, decode(chunk, job))
        return
    if runner.provider == CPU:
        model = (runner.model_bytes, runner.source, runner.batch_size)
        with OrderedPool(workers, _finish_in_worker, _start_worker, (job, model)) as pool:
            yield from pool.map(remaining, IN_FLIGHT_PER_WORKER, _lost)
    else:  # one GPU session, here; the workers decode
        decoders: OrderedPool[Chunk, Decoded | Done] = OrderedPool(
            workers, _decode_in_worker, _start_worker, (job, None)
        )
        with decoders:
            for decoded in decoders.map(remaining, IN_FLIGHT_PER_WORKER, _lost):
                yield decoded if isinstance(decoded, Done) else finish(job, runner, decoded)


class Model(Protocol):
    """What ``classify_files`` needs of a ``Classifier``."""

    runner: ModelRunner
    preparation: Preparation


def classify_files(
    classifier: Model,
    inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    workers: int | None = None,
) -> Iterator[FileBatch]:
    """Classify every image under ``inputs``; a bad file costs only itself.

    Args:
        classifier: the model, device and preparation to use.
        inputs: files (taken whatever their suffix), directories (walked recursively for
            image suffixes), globs (``**`` recurses) and array files (IDX, ``.npy``,
            ``.npz``: each image a row named ``FILE[i]``); one path (a str or PathLike) is
            one input.
        workers: worker processes; None uses every CPU this process may use, 1 works
            here. Fewer than 256 images are always done here.

    Yields:
        ``FileBatch``es in input order (directories in discovery order, see
        ``fashion_onnx.infer.discover``); together they name every input exactly once, as
        a prediction or as a failure.

    Raises:
        ArrayInputError: an array file that cannot be classified (its header is read
            when the iteration reaches it).
    """
    job = Job(classifier.preparation)
    none = np.empty((0, len(classifier.runner.class_names)), np.float32)
    for done in run_job(job, chunks(inputs), classifier.runner, workers):
        probabilities = none if done.probabilities is None else done.probabilities  # lost
        yield FileBatch(done.names, probabilities, done.failures)
