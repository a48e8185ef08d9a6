"""``fashion-infer PATH...``: classify image files with the ONNX model (torch-free).

Exit status: 0 every input was classified; 1 some inputs failed (each named on
stderr), the rest were classified; 2 usage or configuration error (no inputs
found, missing or incompatible model, unusable device).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from fashion_onnx.cli_common import EXIT_INPUT_FAILED, EXIT_OK, fail, run_reporting_errors
from fashion_onnx.infer.classifier import DEFAULT_BATCH, Classifier
from fashion_onnx.infer.discover import find_images
from fashion_onnx.infer.images import INVERT_CHOICES
from fashion_onnx.infer.output import FORMATS, RowWriter
from fashion_onnx.infer.runtime import DEVICES

app = typer.Typer(add_completion=False, rich_markup_mode=None)


def _choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}", param_hint=option)
    return value


@app.command(help=__doc__)
def infer_command(
    paths: Annotated[
        list[str], typer.Argument(help="Image files, directories (recursive) or globs.")
    ],
    model: Annotated[
        Path | None,
        typer.Option(
            help="ONNX model. [default: the model embedded in the package]", show_default=False
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cuda or cpu.")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per engine call.")] = DEFAULT_BATCH,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1, help="Engine threads. [default: onnxruntime's choice]", show_default=False
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Decoding processes. [default: the CPUs available]", show_default=False
        ),
    ] = None,
    invert: Annotated[
        str, typer.Option(help="auto (light backgrounds are inverted), always or never.")
    ] = "auto",
    fmt: Annotated[str, typer.Option("--format", help="table, csv, json or jsonl.")] = "table",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            dir_okay=False,
            help="Write here (atomically). [default: stdout]",
            show_default=False,
        ),
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, max=10, help="Classes shown per image.")] = 1,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="CSV of file,class (relative to the CSV): report how many were right.",
            show_default=False,
        ),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Progress bar on stderr. [default: when stderr is a terminal]",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    _choice(device, DEVICES, "--device")
    _choice(invert, INVERT_CHOICES, "--invert")
    _choice(fmt, FORMATS, "--format")
    code = run_reporting_errors(
        lambda: run_infer(
            paths,
            model=model,
            device=device,
            batch_size=batch_size,
            threads=threads,
            workers=workers,
            invert=invert,
            fmt=fmt,
            output=output,
            top_k=top_k,
            labels=labels,
            progress=progress,
        ),
        debug=debug,
    )
    raise typer.Exit(code)


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
    from fashion_onnx.fileio import atomic_path
    from fashion_onnx.infer.labels import read_truth
    from fashion_onnx.infer.stream import classify_files

    started = time.perf_counter()
    found = find_images(inputs)
    for path, reason in found.problems:
        typer.echo(f"{path}: {reason}", err=True)
    if not found.paths:
        fail("no image files found in the given paths")
    if output is not None:
        out_real = os.path.realpath(output)
        if any(os.path.realpath(p) == out_real for p in found.paths):
            fail(f"--output {output} is one of the inputs; choose another path")
    truth = read_truth(labels) if labels is not None else {}
    classifier = Classifier(
        model, device=device, batch_size=batch_size, threads=threads, invert=invert
    )  # type: ignore[arg-type]

    show_bar = sys.stderr.isatty() if progress is None else progress
    failures = len(found.problems)
    done = right = judged = 0

    def consume(stream) -> None:  # noqa: ANN001 - a text stream
        nonlocal failures, done, right, judged
        writer = RowWriter(stream, fmt, classifier.class_names, top_k)
        bar = _progress_bar(len(found.paths)) if show_bar else None
        try:
            for chunk in classify_files(classifier, found.paths, workers):
                for path, reason in chunk.failures:
                    typer.echo(f"{path}: {reason}", err=True)
                writer.write(chunk.paths, chunk.probabilities)
                failures += len(chunk.failures)
                done += len(chunk.paths)
                if truth:
                    predicted = chunk.probabilities.argmax(1)
                    for path, label in zip(chunk.paths, predicted, strict=True):
                        expected = truth.get(os.path.realpath(path))
                        if expected is not None:
                            judged += 1
                            right += classifier.class_names[label] == expected
                if bar is not None:
                    bar.advance(len(chunk.paths) + len(chunk.failures))
        finally:
            if bar is not None:
                bar.stop()
        writer.close()

    if output is None:
        consume(sys.stdout)
    else:
        with atomic_path(output) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
            consume(handle)
    seconds = time.perf_counter() - started
    summary = (
        f"{done} image(s) classified, {failures} failed, on {classifier.provider}, "
        f"{done / seconds:,.0f} images/s ({seconds:.2f}s)"
    )
    if truth:
        summary += f"; correct: {right}/{judged}" + (
            f" ({100 * right / judged:.1f}%)" if judged else ""
        )
    typer.echo(summary, err=True)
    return EXIT_INPUT_FAILED if failures else EXIT_OK


class _progress_bar:  # noqa: N801 - used like a function
    """A rich progress bar on stderr, imported only when shown."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("classifying", total=total)
        self._progress.start()

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def stop(self) -> None:
        self._progress.stop()


def main() -> None:
    app()
