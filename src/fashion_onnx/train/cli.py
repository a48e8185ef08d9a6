"""``fashion-train``: train the MLP on real FashionMNIST, save a state_dict, metrics and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fashion_onnx.cli_common import DataDirOption, run_reporting_errors, warnings_as_lines
from fashion_onnx.train.config import TrainConfig

DEFAULTS = TrainConfig()

app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)

_DEFAULTS_NOTE = (
    f"Default recipe: AdamW (weight decay {DEFAULTS.weight_decay}), one-cycle LR, "
    f"dropout {DEFAULTS.dropout}, label smoothing {DEFAULTS.label_smoothing}."
)


@app.command(help=f"Train the FashionMNIST MLP. {_DEFAULTS_NOTE}")
def train_command(
    epochs: Annotated[
        int, typer.Option(min=1, help="Passes over the training set.")
    ] = DEFAULTS.epochs,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Images per optimizer step.")
    ] = DEFAULTS.batch_size,
    lr: Annotated[
        float, typer.Option(min=0.0, help="Peak learning rate (one-cycle).")
    ] = DEFAULTS.lr,
    seed: Annotated[
        int, typer.Option(help="Seeds weights, shuffling and dropout.")
    ] = DEFAULTS.seed,
    data_dir: DataDirOption = None,
    download: Annotated[
        bool, typer.Option(help="Try torchvision's download if no local copy is found.")
    ] = True,
    output: Annotated[
        Path, typer.Option("--output", "-o", dir_okay=False, help="Where to write the state_dict.")
    ] = Path("model.pth"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = DEFAULTS.device,
    plots: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="Write training plots (PNG) into this directory."),
    ] = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="Print the layer table and exit.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Train for 2 steps only (smoke test).")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    from fashion_onnx.train import run

    if summary:
        typer.echo(run_reporting_errors(run.summary_table, debug=debug))
        return
    with warnings_as_lines():  # e.g. a GPU that torch cannot use: one line
        run_reporting_errors(
            lambda: run.train_and_save(
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                seed=seed,
                data_dir=data_dir,
                download=download,
                output=output,
                device=device,
                plots=plots,
                max_steps=2 if dry_run else None,
            ),
            debug=debug,
        )


def main() -> None:
    app()
