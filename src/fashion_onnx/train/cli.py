"""``fashion-train``: train the MLP or the CNN on real FashionMNIST; save a state_dict,
metrics and plots.

Exit status: 0 trained and saved; 2 usage or configuration error (bad option, missing
data, an existing model without --force, the [train] extra missing, unusable device).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
from fashion_onnx.constants import HELD_OUT
from fashion_onnx.train.config import ARCHS, RECIPES

MLP, CNN = RECIPES["mlp"], RECIPES["cnn"]

app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)


def _both(field: str) -> str:
    """The default of a recipe setting, said once when both recipes agree."""
    mlp, cnn = getattr(MLP, field), getattr(CNN, field)
    if mlp == cnn:
        return f"[default: {mlp}, both recipes]"
    return f"[default: {mlp} for the MLP, {cnn} for the CNN]"


@app.command(
    cls=Command,
    help="Train on real FashionMNIST: the card's MLP (--arch mlp, the default) or a small "
    f"CNN (--arch cnn). MLP recipe: AdamW (weight decay {MLP.weight_decay}), one-cycle LR, "
    f"dropout {MLP.dropout}. CNN recipe: SGD with "
    f"Nesterov momentum (weight decay {CNN.weight_decay}), one-cycle LR, dropout "
    f"{CNN.dropout}, random 2-pixel shifts and "
    "flips, bfloat16 where the CPU has it. Both: outlier exposure (synthetic non-garments "
    "pushed towards a uniform answer, so that fashion-infer --abstain can tell them), and "
    f"{HELD_OUT:,} training images held out for fashion-export's calibration.\n\n"
    "An existing model (the .pth or its .json) is not replaced without --force, "
    "--dry-run included.\n\n"
    "Exit status: 0 trained and saved; 2 usage or configuration error (bad option, "
    "missing data, an existing model without --force, the [train] extra not installed, "
    "unusable device).",
)
def train_command(
    arch: Annotated[str, typer.Option(help="mlp (the card's model) or cnn.")] = "mlp",
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1, help=f"Passes over the training set. {_both('epochs')}", show_default=False
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1, help=f"Images per optimizer step. {_both('batch_size')}", show_default=False
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            min=0.0, help=f"Peak learning rate (one-cycle). {_both('lr')}", show_default=False
        ),
    ] = None,
    outliers: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Weight of the outlier-exposure loss on synthetic non-garments (0: off). "
            f"{_both('outliers')}",
            show_default=False,
        ),
    ] = None,
    holdout: Annotated[
        bool,
        typer.Option(
            help=f"Keep {HELD_OUT:,} training images out of training: fashion-export fits the "
            "temperature of calibrated_probabilities on them."
        ),
    ] = MLP.holdout,
    seed: Annotated[
        int, typer.Option(help="Seeds weights, shuffling, dropout and augmentation.")
    ] = MLP.seed,
    data_dir: DataDirOption = None,
    download: Annotated[
        bool, typer.Option(help="Try torchvision's download if no local copy is found.")
    ] = True,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            dir_okay=False,
            help="Where to write the state_dict; the metrics go beside it (.json).",
        ),
    ] = Path("model.pth"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = MLP.device,
    plots: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="Write training plots (PNG) into this directory."),
    ] = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="Print the layer table and exit.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Train for 2 steps only (smoke test); still writes -o, so not over a "
            "model without --force.",
        ),
    ] = False,
    force: ForceOption = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: VersionOption = False,
) -> None:
    if arch not in ARCHS:
        raise typer.BadParameter(f"{arch!r} is not one of {', '.join(ARCHS)}", param_hint="--arch")
    if summary:
        typer.echo(run_reporting_errors(lambda: _summary(arch), debug=debug))
        return
    if not output.is_dir():  # a directory: the driver names it
        # The metrics file beside it is run.metrics_path(output); the rule is kept here
        # so that the refusal comes at once, before torch is imported.
        metrics = output.with_suffix(".json")
        run_reporting_errors(lambda: refuse_to_replace([output, metrics], force=force))
    announce_data_dir(data_dir)
    with warnings_as_lines():  # e.g. a GPU that torch cannot use: one line
        run_reporting_errors(
            lambda: _train(
                arch=arch,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                outliers=outliers,
                holdout=holdout,
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


def _summary(arch: str) -> str:
    with train_extra_needed("fashion-train"):
        from fashion_onnx.train import run

        return run.summary_table(arch)


def _train(**settings: Any) -> object:
    with train_extra_needed("fashion-train"):
        from fashion_onnx.train import run

        return run.train_and_save(**settings)


def main() -> None:
    app()
