"""``fashion-infer PATH...``: classify image files with the ONNX model (torch-free).

The face of ``job.write_predictions``: it parses the options into ``JobOptions``, calls
the job with a progress counter and a line per bad input on stderr, and prints the
summary. Exit status: 0 every input was classified; 1 some inputs failed (each named on
stderr), the rest were classified; 2 usage or configuration error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fashion_onnx.cli_common import (
    EXIT_INPUT_FAILED,
    EXIT_OK,
    Command,
    VersionOption,
    fail,
    progress_bar,
    run_reporting_errors,
    run_then_exit_at_once,
    warnings_as_lines,
)
from fashion_onnx.constants import DEVICES

if TYPE_CHECKING:
    from fashion_onnx.infer.decode import Failure
    from fashion_onnx.infer.job import JobOptions

app = typer.Typer(add_completion=False, rich_markup_mode=None)


def _choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}", param_hint=option)
    return value


@app.command(
    cls=Command,  # usage errors as one error: line, --version
    help="Classify image files with the ONNX model (torch-free).\n\n"
    "Directories are walked recursively in the order the filesystem lists them; rows are "
    "written as results arrive, in that order.\n\n"
    "With --engine ray the same job runs on a Ray cluster "
    "(pip install 'fashion-onnx[ray,cpu]').\n\n"
    "Exit status: 0 every input was classified; 1 some inputs failed (each named on "
    "stderr), the rest were classified; 2 usage or configuration error (no inputs found, "
    "missing or incompatible model, unusable device or cluster); 128+N stopped by signal N "
    "(130 Ctrl-C, 141 the reader of stdout left, 143 SIGTERM).",
)
def infer_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH",
            help="Image files, directories (recursive) or globs; with --engine ray also "
            "URIs (s3://bucket/prefix/).",
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            help="mlp or cnn, any case (the models embedded in the package; the CNN makes "
            "fewer mistakes, the MLP is faster), or an ONNX file (export a .pth first with "
            "fashion-export)."
        ),
    ] = "mlp",
    device: Annotated[str, typer.Option(help="auto, cuda or cpu.")] = "auto",
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Images per engine call. [default: 512 on CPU, 4096 on CUDA]",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Engine threads when the engine runs in this process (fewer than 256 files, "
            "or --workers 1). [default: onnxruntime's choice]",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes that decode (and on the CPU, classify). "
            "[default: the CPUs available]",
            show_default=False,
        ),
    ] = None,
    invert: Annotated[
        str, typer.Option(help="auto (light backgrounds are inverted), always or never.")
    ] = "auto",
    fit: Annotated[
        str,
        typer.Option(
            help="trim (cut pictures that are not 28x28 to the garment, then fit and centre "
            "it, as FashionMNIST was made: product photos with margins) or full (fit the "
            "whole frame)."
        ),
    ] = "trim",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="table, csv, json, jsonl; or parquet (--engine ray, -o a directory or URI). "
            "[default: from -o's suffix (.csv, .json, .jsonl, any case; .parquet with --engine "
            "ray), else table]",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Write here (a file, atomically; for parquet a directory or URI). A file's "
            "rows are journaled in FILE.partial as they come (see --resume). "
            "[default: stdout]",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Finish the run that -o FILE's journal (FILE.partial) holds, after a kill, "
            "Ctrl-C or a full disk: what it finished is skipped. With no journal, a normal "
            "run.",
        ),
    ] = False,
    top_k: Annotated[int, typer.Option(min=1, max=10, help="Classes shown per image.")] = 1,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="CSV with file and class columns: report how many were right, and mark the "
            "table's wrong rows. Its paths are relative to the CSV's own folder (or "
            "absolute); class names in any case.",
            show_default=False,
        ),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Progress on stderr. [default: when stderr is a terminal]",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="local (processes on this machine) or ray (Ray Data).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="The Ray cluster, HOST:PORT. [default: $RAY_ADDRESS, else a local Ray]",
            show_default=False,
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Rows whose (calibrated) confidence is below P read unknown: label -1, "
            "class unknown; the summary counts them.",
            metavar="P",
            show_default=False,
        ),
    ] = None,
    ood_score: Annotated[
        bool,
        typer.Option(
            "--ood-score",
            help="Add an ood_score column: the energy -logsumexp(logits); higher = less "
            "like FashionMNIST.",
        ),
    ] = False,
    abstain: Annotated[
        bool,
        typer.Option(
            "--abstain",
            help="Rows whose ood_score is above the model's measured threshold (it keeps 95% "
            "of the real test set) read unknown. [default: off]",
        ),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: VersionOption = False,
) -> None:
    _choice(device, DEVICES, "--device")
    from fashion_onnx.infer.prepare import FIT_CHOICES, INVERT_CHOICES

    _choice(invert, INVERT_CHOICES, "--invert")
    _choice(fit, FIT_CHOICES, "--fit")
    from fashion_onnx.infer.output import FORMATS, pick_format

    if fmt is not None:
        _choice(fmt, (*FORMATS, "parquet"), "--format")
    fmt = run_reporting_errors(lambda: pick_format(fmt, output))
    _choice(engine, ("local", "ray"), "--engine")
    if fmt == "parquet" and (engine != "ray" or output is None):
        raise typer.BadParameter(
            "parquet needs --engine ray and -o DIR_OR_URI", param_hint="--format"
        )
    if output is not None and fmt != "parquet" and os.path.isdir(output):
        raise typer.BadParameter(f"{output} is a directory; give a file", param_hint="--output")
    if (ood_score or abstain) and engine == "ray":
        fail("--ood-score and --abstain need the local engine (--engine local)")
    if resume and output is None:
        raise typer.BadParameter(
            "needs -o FILE (the journal is kept beside it)", param_hint="--resume"
        )
    from fashion_onnx.infer.job import JobOptions, Trust

    options = JobOptions(
        model=model,
        device=device,
        batch_size=batch_size,
        threads=threads,
        workers=workers,
        invert=invert,
        fit=fit,
        fmt=fmt,
        top_k=top_k,
        labels=labels,
        trust=Trust(min_confidence, ood_score, abstain),
        resume=resume,
        engine=engine,
        ray_address=ray_address,
    )
    show_progress = sys.stderr.isatty() if progress is None else progress
    with warnings_as_lines():  # the model's metadata, a CUDA fallback, --labels: one line each
        code = run_reporting_errors(
            lambda: run(paths, output, options, progress=show_progress), debug=debug
        )
    raise typer.Exit(code)


def main() -> None:
    # No BLAS here or in the forked workers: one OpenBLAS thread spares numpy's ~70 ms.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # rows name files as they are named: one that is not UTF-8 as its own bytes
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    run_then_exit_at_once(app)


def report_failures(failures: list[Failure]) -> None:
    """A line per failed input on stderr, every byte of it even when Ctrl-C comes while
    the lines wait on a full pipe (``write_whole``: Python's buffered stderr cut the last
    line short there, and lost the rest)."""
    if not failures:
        return
    from fashion_onnx.infer.output import write_whole

    write_whole(sys.stderr, "".join(f"{f.path}: {f.reason}\n" for f in failures))


def run(paths: list[str], output: str | None, options: JobOptions, *, progress: bool) -> int:
    """Run the job; print the summary (or how to resume); return the exit status."""
    from fashion_onnx.infer.job import JobInterrupted, write_predictions

    try:
        with progress_bar(progress) as advance:
            result = write_predictions(
                paths, output, options, on_failures=report_failures, on_progress=advance
            )
    except BrokenPipeError:  # the reader left (| head): end quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # SIGPIPE's status, without dying of it
    except JobInterrupted as stopped:
        done, more = stopped.counts.classified + stopped.counts.failed, stopped.partly
        typer.echo(
            f"interrupted: the rows of the first {done:,} input(s)"
            f"{', and part of the next' if more else ''} were written to "
            f"{output or 'stdout'}; the rest were not classified",
            err=True,
        )
        return 128 + stopped.signal
    if result.interrupted is not None:
        typer.echo(
            f"interrupted: {result.saved:,} of the images are saved in "
            f"{result.resume_folder}; run the same command with --resume to finish",
            err=True,
        )
        return 128 + result.interrupted
    counts, seconds = result.counts, result.seconds
    summary = (
        f"{counts.classified} image(s) classified, {counts.failed} failed, on {result.where}, "
        f"fit {options.fit}, {counts.classified / seconds:,.0f} images/s ({seconds:.2f}s)"
    )
    if options.labels is not None or counts.listed:  # --labels, or an .npz's own
        share = f" ({100 * counts.right / counts.judged:.1f}%)" if counts.judged else ""
        summary += f"; correct: {counts.right}/{counts.judged}{share}"
    if options.trust.min_confidence is not None or options.trust.abstain:
        summary += f"; unknown: {counts.unknown}"
    typer.echo(summary, err=True)
    return EXIT_INPUT_FAILED if counts.failed else EXIT_OK
