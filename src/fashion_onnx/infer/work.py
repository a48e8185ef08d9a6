"""What happens to one chunk, end to end, where the chunk is: read and decode (or slice an
array), prepare, run the runner, render the rows, judge them against ``--labels``.

The scheduler (``files``) only hands chunks out and gathers ``Done``s in order: nothing per
image crosses a process boundary but the chunk's paths going out and, coming back, its
rendered text (the command line) or its probabilities (the Python API).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fashion_onnx.infer.abstain import energy
from fashion_onnx.infer.decode import Failure, decode_chunk
from fashion_onnx.infer.labels import Truth
from fashion_onnx.infer.output import RowFormat
from fashion_onnx.infer.prepare import Preparation, light_borders
from fashion_onnx.infer.runner import ModelRunner
from fashion_onnx.infer.sources import Chunk, ChunkKey, PathChunk, chunk_key


@dataclass
class Counts:
    """What a chunk (or a run) came to."""

    classified: int = 0
    failed: int = 0
    listed: int = 0  # inputs (classified or failed) that --labels lists
    judged: int = 0  # classified images with a known true class
    right: int = 0  # judged on the top-1 class, whether or not the row abstained
    unknown: int = 0  # rows that abstained (label -1)

    def add(self, other: Counts) -> None:
        self.classified += other.classified
        self.failed += other.failed
        self.listed += other.listed
        self.judged += other.judged
        self.right += other.right
        self.unknown += other.unknown


@dataclass(frozen=True)
class Job:
    """The settings every chunk of a run is finished with."""

    preparation: Preparation
    rows: RowFormat | None = None  # render rows in this format; None: keep probabilities
    truth: Truth | None = None
    keyed: bool = False  # give each Done its chunk's key (the resume journal records it)


@dataclass(frozen=True)
class Decoded:
    """A chunk decoded and prepared, before the runner."""

    names: list[str]  # the images that decoded, in order
    images: np.ndarray  # (len(names), 28, 28)
    failures: list[Failure]  # the chunk's discovery problems, then its unreadable files
    base: int | None = None  # array chunks: the first image's index among array images
    key: ChunkKey | None = None  # when the job is keyed


@dataclass(frozen=True)
class Done:
    """A finished chunk."""

    names: list[str]  # the images classified, in order; [] when the rows were rendered
    probabilities: np.ndarray | None  # (len(names), 10), unless the rows were rendered
    failures: list[Failure]
    text: str  # the rendered rows ("" when not rendering)
    counts: Counts
    key: ChunkKey | None = None  # the chunk's, when the job is keyed


def decode(chunk: Chunk, job: Job) -> Decoded:
    """Read, decode and prepare a chunk's images; an unreadable file costs only itself."""
    key = chunk_key(chunk) if job.keyed else None
    preparation = job.preparation
    if isinstance(chunk, PathChunk):
        paths = chunk.paths
        decoded = decode_chunk(paths, preparation)
        names, failures = decoded.split(paths)
        return Decoded(names, decoded.images, chunk.problems + failures, key=key)
    images = chunk.images()
    invert = preparation.invert
    if invert != "never" and len(images):
        flip = light_borders(images) if invert == "auto" else np.ones(len(images), bool)
        if flip.any():
            images = images.copy()
            images[flip] = (255 if images.dtype == np.uint8 else 1.0) - images[flip]
    return Decoded(chunk.names(), images, [], chunk.base, key)


def finish(job: Job, runner: ModelRunner, decoded: Decoded) -> Done:
    """Run the runner on a decoded chunk; render and judge its rows if the job says so."""
    abstain = job.rows.abstain if job.rows is not None else None
    if abstain is not None and abstain.needs_logits:
        probabilities, logits = runner.predict_with_logits(decoded.images)
        return conclude(job, decoded, probabilities, energy(logits))
    return conclude(job, decoded, runner.predict_pixels(decoded.images))


def conclude(
    job: Job, decoded: Decoded, probabilities: np.ndarray, ood_scores: np.ndarray | None = None
) -> Done:
    """A decoded chunk's probabilities as a finished chunk: its rows rendered and judged
    if the job says so (the Ray runner's driver calls this on the cluster's results).
    ``ood_scores``: the rows' energy, when the job's rows show or threshold it."""
    counts = Counts(classified=len(decoded.names), failed=len(decoded.failures))
    if job.rows is None:
        return Done(decoded.names, probabilities, decoded.failures, "", counts, decoded.key)
    truths: list[str | None] | None = None
    if job.truth is not None:
        if decoded.base is None:
            truths = job.truth.for_paths(decoded.names)
            counts.listed = job.truth.listed(decoded.names) + job.truth.listed(
                [f.path for f in decoded.failures]
            )
        else:
            truths = job.truth.for_array(decoded.base, len(decoded.names))
            counts.listed = sum(t is not None for t in truths)
        names = job.rows.class_names
        for label, truth in zip(probabilities.argmax(axis=1).tolist(), truths, strict=True):
            if truth is not None:
                counts.judged += 1
                counts.right += names[label] == truth
    if job.rows.abstain is not None:
        counts.unknown = int(job.rows.abstain.unknown(probabilities, ood_scores).sum())
    text = job.rows.render(decoded.names, probabilities, truths, ood_scores)
    return Done([], None, decoded.failures, text, counts, decoded.key)  # the text names them
