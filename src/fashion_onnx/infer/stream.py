"""Classify many files: parallel decoding feeding the engine, results chunk by chunk, in order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from fashion_onnx.infer.classifier import Classifier
from fashion_onnx.infer.decode import DecodePool, decode_files


@dataclass(frozen=True)
class ChunkResult:
    paths: list[str]  # files that were classified, in input order
    probabilities: np.ndarray  # (len(paths), 10)
    failures: list[tuple[str, str]]  # (path, reason) for files that could not be read


def classify_files(
    classifier: Classifier,
    paths: Sequence[str],
    workers: int | None = None,
    pool: DecodePool | None = None,
) -> Iterator[ChunkResult]:
    """Yield results for ``paths`` a chunk at a time; memory stays flat however many there are.

    Decoding runs in ``pool``, or in ``workers`` processes, or here (see ``decode_files``).
    """
    chunks = decode_files(paths, classifier.invert, workers, pool)
    for chunk in chunks:
        (probs,) = classifier.predict_array_batches([chunk.images])
        good = [p for p, ok in zip(chunk.paths, chunk.ok, strict=True) if ok]
        yield ChunkResult(good, probs, chunk.errors)
