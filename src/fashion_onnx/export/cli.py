"""``fashion-export model.pth``: write one verified, self-describing ONNX file.

Exit status: 0 written and verified; 2 usage or configuration error, or a failed check
(nothing is written then).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fashion_onnx.cli_common import (
    Command,
    DataDirOption,
    ForceOption,
    VersionOption,
    announce_data_dir,
    refuse_to_replace,
    run_reporting_errors,
    train_extra_needed,
    warnings_as_lines,
)
from fashion_onnx.constants import DEFAULT_ATOL, DEFAULT_MAX_DROP_POINTS, DEFAULT_OPSET

if TYPE_CHECKING:
    from fashion_onnx.export.api import ExportReport

app = typer.Typer(add_completion=False, rich_markup_mode=None)


@app.command(
    cls=Command,
    help="Export a .pth state_dict to ONNX and prove the file matches torch before it appears. "
    "Every file (the model and its --int8/--fp16 copies) is verified before any appears; on "
    "any failure the command exits 2 with one error line and leaves no file behind. "
    "Existing ONNX files are not replaced without --force.\n\n"
    "Exit status: 0 every file written and verified; 2 usage or configuration error (bad "
    "option, unreadable or foreign checkpoint, an existing output without --force, the "
    "[train] extra or ONNX Runtime not installed) or a failed check; no file is written.",
)
def export_command(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="CHECKPOINT",
            help="The .pth state_dict.",
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            dir_okay=False,
            help="The ONNX file. [default: the checkpoint's name with .onnx]",
            show_default=False,
        ),
    ] = None,
    opset: Annotated[int, typer.Option(min=17, help="ONNX opset to pin.")] = DEFAULT_OPSET,
    atol: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Largest allowed |difference| of logits/probabilities. "
            f"[default: {DEFAULT_ATOL['mlp']:g} for the MLP, {DEFAULT_ATOL['cnn']:g} for the CNN]",
            show_default=False,
        ),
    ] = None,
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="Also write MODEL.int8.onnx: dynamic or static (QDQ, calibrated on "
            "training images) quantization, whichever measures better.",
        ),
    ] = False,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="Also write MODEL.fp16.onnx (float32 inputs/outputs).")
    ] = False,
    photo: Annotated[
        bool,
        typer.Option(
            "--photo",
            help="Also write MODEL_photo.onnx: uint8 RGB pictures of any size in, the photo "
            "preparation inside the graph (for Node, the browser, any onnxruntime); verified "
            "against the Python preparation.",
        ),
    ] = False,
    max_drop: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Largest test-accuracy loss (points) allowed for a variant. "
            f"[default: {DEFAULT_MAX_DROP_POINTS['mlp']:g} for the MLP, "
            f"{DEFAULT_MAX_DROP_POINTS['cnn']:g} for the CNN]",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout.")
    ] = False,
    force: ForceOption = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: VersionOption = False,
) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    precisions = tuple(p for p, wanted in (("int8", int8), ("fp16", fp16)) if wanted)
    out = output or checkpoint.with_suffix(".onnx")

    def export() -> ExportReport:
        # First the runtime check: without ONNX Runtime it names the install command.
        import fashion_onnx.infer.runtime  # noqa: F401

        with train_extra_needed("fashion-export"):
            from fashion_onnx.export.api import export_onnx
            from fashion_onnx.export.photo_model import photo_path
            from fashion_onnx.export.variants import variant_path

        if out.resolve() != checkpoint.resolve():  # that mistake has its own message
            photos = [photo_path(out)] if photo else []
            refuse_to_replace(
                [out, *(variant_path(out, p) for p in precisions), *photos], force=force
            )
        with train_extra_needed("fashion-export"):
            return export_onnx(
                checkpoint,
                out,
                opset=opset,
                atol=atol,
                data_dir=data_dir,
                precisions=precisions,
                max_drop_points=max_drop,
                photo=photo,
                on_stage=lambda stage: status.update(stage),
            )

    announce_data_dir(data_dir)
    with console.status("exporting") as status, warnings_as_lines():
        report = run_reporting_errors(export, debug=debug)
    from fashion_onnx.export.report import report_table, report_title

    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        stdout = Console()
        stdout.print(report_title(report), highlight=False, soft_wrap=True)  # a whole path
        stdout.print(report_table(report))


def main() -> None:
    app()
