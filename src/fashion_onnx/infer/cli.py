"""``fashion-infer PATH...``: classify image files with the ONNX model (torch-free).

Exit status: 0 every input was classified; 1 some inputs failed (each named on
stderr), the rest were classified; 2 usage or configuration error (no inputs
found, missing or incompatible model, unusable device).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fashion_onnx.cli_common import run_reporting_errors
from fashion_onnx.infer.classifier import DEFAULT_BATCH
from fashion_onnx.infer.images import INVERT_CHOICES
from fashion_onnx.infer.output import FORMATS
from fashion_onnx.infer.runtime import DEVICES

app = typer.Typer(add_completion=False, rich_markup_mode=None)


def _choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}", param_hint=option)
    return value


@app.command(
    help="Classify image files with the ONNX model (torch-free).\n\n"
    "Exit status: 0 every input was classified; 1 some inputs failed (each named on "
    "stderr), the rest were classified; 2 usage or configuration error (no inputs found, "
    "missing or incompatible model, unusable device)."
)
def infer_command(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH", help="Image files, directories (recursive) or globs."),
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
    from fashion_onnx.infer.run import run_infer

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


def main() -> None:
    app()
