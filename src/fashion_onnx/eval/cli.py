"""``fashion-eval [DATA]``: how far to trust a model, on labelled data (torch-free).

Exit status: 0 evaluated; 2 usage or configuration error (no such model or data, a bad
labels file, matplotlib missing for --plots).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fashion_onnx.cli_common import (
    Command,
    DataDirOption,
    VersionOption,
    run_reporting_errors,
    run_then_exit_at_once,
    warnings_as_lines,
)

if TYPE_CHECKING:
    from rich.table import Table

    from fashion_onnx.eval.run import EvalReport

app = typer.Typer(add_completion=False, rich_markup_mode=None)


@app.command(
    cls=Command,
    help="Evaluate a model on labelled data: top-1/top-2 accuracy, per-class precision and "
    "recall, the confusion matrix, calibration (ECE, 15 bins, before and after the file's "
    "temperature), the int8/fp16 copies beside the model, latency and throughput, and how "
    "well its OOD score tells digits, photo patches, noise and inverted garments from the "
    "data (energy and MSP). DATA: a folder with labels.csv (file,class), a .npz with images "
    "and labels, or a .npy of images with --labels; default: the real FashionMNIST test set."
    "\n\nExit status: 0 evaluated; 2 usage or configuration error (no such model or data, "
    "a bad labels file, matplotlib missing for --plots).",
)
def eval_command(
    data: Annotated[
        Path | None,
        typer.Argument(
            metavar="DATA",
            help="A folder with labels.csv, a .npz (images, labels) or a .npy of images. "
            "[default: the real test set]",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str, typer.Option(help="mlp or cnn (embedded, any case), or an ONNX file.")
    ] = "mlp",
    labels: Annotated[
        Path | None,
        typer.Option(help="The .npy of class indices for a .npy of images.", show_default=False),
    ] = None,
    plots: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Write confusion.png and reliability.png here (needs matplotlib).",
            show_default=False,
        ),
    ] = None,
    speed: Annotated[
        bool, typer.Option("--speed/--no-speed", help="Time batch 1 and batch 1,024.")
    ] = True,
    ood: Annotated[
        bool, typer.Option("--ood/--no-ood", help="Score the OOD sets (needs the [test] extra).")
    ] = True,
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: VersionOption = False,
) -> None:
    def evaluate() -> EvalReport:
        from fashion_onnx.eval import data as eval_data
        from fashion_onnx.eval.run import evaluate

        report = evaluate(
            model,
            eval_data.load(data, labels, data_dir),
            measure_speed=speed,
            measure_ood=ood,
        )
        if plots is not None:
            from fashion_onnx.eval.plots import write_plots

            write_plots(report, plots)
        return report

    with warnings_as_lines():
        report = run_reporting_errors(evaluate, debug=debug)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    from rich.console import Console

    Console().print(summary_table(report))


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def summary_table(report: EvalReport) -> Table:
    """The report for the terminal: one table."""
    from rich.table import Table
    from rich.text import Text

    # plain text, never markup: "[test]" in a reason, a path with brackets, stay as written
    table = Table(title=Text(f"{report.model} on {report.data}"), show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")

    def row(what: str, value: str) -> None:
        table.add_row(Text(what), Text(value))

    row("top-1 / top-2 accuracy", f"{_pct(report.top1)} / {_pct(report.top2)}")
    for i, name in enumerate(report.class_names):
        row(
            f"  {name}",
            f"precision {_pct(report.precision[i])}, recall {_pct(report.recall[i])}",
        )
    temp = "" if report.temperature is None else f" (T = {report.temperature:.4f})"
    row(
        f"ECE, {report.ece_bins} bins",
        f"{report.ece_probabilities:.4f} probabilities, {report.ece_calibrated:.4f} reported{temp}",
    )
    for v in report.variants:
        row(v.precision, f"accuracy {_pct(v.accuracy)}, top-1 agreement {_pct(v.agreement)}")
    for s in report.speed:
        row(
            f"speed, {s.device}",
            f"batch 1 p50 {s.p50_ms:.3f} ms, p99 {s.p99_ms:.3f} ms; "
            f"batch 1,024 {s.images_per_s:,.0f} img/s ({s.provider})",
        )
    if report.ood is not None:
        o = report.ood
        row(
            "OOD threshold",
            f"{o.chosen} > {o.threshold:.4f} abstains ({o.threshold_source}); "
            f"keeps {_pct(o.kept)} of the data",
        )
        for score, rows in o.sets.items():
            for r in rows:
                row(
                    f"  {score} vs {r.name}",
                    f"AUROC {r.auroc:.4f}, marked unknown {_pct(r.flagged)} of {r.images:,}"
                    + (" (rows use this score)" if score == o.chosen else ""),
                )
        for name, why in o.skipped.items():
            row(f"  {name}", f"skipped: {why}")
    return table


def main() -> None:
    run_then_exit_at_once(app)
