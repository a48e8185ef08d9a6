"""The CLI's driver for ``fashion-infer``: find files, classify them in a stream, report."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import typer

from fashion_onnx.cli_common import EXIT_INPUT_FAILED, EXIT_OK, fail
from fashion_onnx.fileio import atomic_path
from fashion_onnx.infer.classifier import Classifier
from fashion_onnx.infer.decode import DecodePool, wants_parallel
from fashion_onnx.infer.discover import find_images
from fashion_onnx.infer.labels import read_truth
from fashion_onnx.infer.output import RowWriter
from fashion_onnx.infer.progress import ProgressBar
from fashion_onnx.infer.stream import classify_files


@dataclass
class Tally:
    classified: int = 0
    failed: int = 0
    judged: int = 0  # classified files with a known true class
    right: int = 0


def report_failures(failures: list[tuple[str, str]]) -> None:
    for path, reason in failures:
        typer.echo(f"{path}: {reason}", err=True)


def is_an_input(output: Path, inputs: list[str]) -> bool:
    """Whether ``output`` is the same file as one of ``inputs`` (links included)."""
    try:
        target = os.stat(output)
    except OSError:
        return False  # a file that does not exist yet is no input
    for path in inputs:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            return True
    return False


@contextlib.contextmanager
def open_output(output: Path | None) -> Iterator[TextIO]:
    """stdout, or a file that appears (atomically) only once everything is written."""
    if output is None:
        yield sys.stdout
        return
    with atomic_path(output) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        yield handle


def classify_into(
    classifier: Classifier,
    paths: list[str],
    pool: DecodePool | None,
    writer: RowWriter,
    truth: dict[str, str],
    bar: ProgressBar | None,
) -> Tally:
    tally = Tally()
    for chunk in classify_files(classifier, paths, pool=pool, workers=1 if pool is None else None):
        report_failures(chunk.failures)
        writer.write(chunk.paths, chunk.probabilities)
        tally.failed += len(chunk.failures)
        tally.classified += len(chunk.paths)
        if truth:
            for path, label in zip(chunk.paths, chunk.probabilities.argmax(1), strict=True):
                expected = truth.get(os.path.realpath(path))
                if expected is not None:
                    tally.judged += 1
                    tally.right += classifier.class_names[label] == expected
        if bar is not None:
            bar.advance(len(chunk.paths) + len(chunk.failures))
    writer.close()
    return tally


def run_infer(
    inputs: list[str],
    *,
    model: Path | None,
    device: str,
    batch_size: int,
    threads: int | None,
    workers: int | None,
    invert: str,
    fmt: str,
    output: Path | None,
    top_k: int,
    labels: Path | None,
    progress: bool | None,
) -> int:
    """Classify every image under ``inputs``; return the exit status (0 or 1)."""
    started = time.perf_counter()
    found = find_images(inputs)
    report_failures(found.problems)
    if not found.paths:
        fail("no image files found in the given paths")
    if output is not None and is_an_input(output, found.paths):
        fail(f"--output {output} is one of the inputs; choose another path")
    truth = read_truth(labels) if labels is not None else {}
    parallel = wants_parallel(len(found.paths), workers)
    show_bar = sys.stderr.isatty() if progress is None else progress
    with contextlib.ExitStack() as stack:
        # Fork the decoders first, while this process has no engine threads.
        pool = stack.enter_context(DecodePool(workers)) if parallel else None
        classifier = Classifier(
            model,
            device=device,
            batch_size=batch_size,
            threads=threads,
            invert=invert,  # type: ignore[arg-type]
            spinning=not parallel,  # busy-waiting engine threads would slow the decoders
        )
        bar = stack.enter_context(ProgressBar(len(found.paths))) if show_bar else None
        stream = stack.enter_context(open_output(output))
        writer = RowWriter(stream, fmt, classifier.class_names, top_k)
        tally = classify_into(classifier, found.paths, pool, writer, truth, bar)
    tally.failed += len(found.problems)
    seconds = time.perf_counter() - started
    summary = (
        f"{tally.classified} image(s) classified, {tally.failed} failed, on {classifier.provider}, "
        f"{tally.classified / seconds:,.0f} images/s ({seconds:.2f}s)"
    )
    if truth:
        share = f" ({100 * tally.right / tally.judged:.1f}%)" if tally.judged else ""
        summary += f"; correct: {tally.right}/{tally.judged}{share}"
    typer.echo(summary, err=True)
    return EXIT_INPUT_FAILED if tally.failed else EXIT_OK
