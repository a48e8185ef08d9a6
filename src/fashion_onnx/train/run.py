"""The CLI's driver for ``fashion-train``: load data, train with a progress bar, save, plot.

Kept apart from ``cli.py`` so that ``fashion-train --help`` never imports torch.
"""

from __future__ import annotations

import io
import json
import platform
import re
from pathlib import Path

import torch
import torchvision
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

import fashion_onnx
from fashion_onnx.constants import HELD_OUT
from fashion_onnx.errors import InvalidArgumentError
from fashion_onnx.fileio import write_bytes_atomic, write_text_atomic
from fashion_onnx.models import build_model
from fashion_onnx.train.config import recipe
from fashion_onnx.train.data import load_fashion_mnist
from fashion_onnx.train.loop import EpochMetrics, TrainResult, train


def summary_table(arch: str = "mlp") -> str:
    """The torchinfo layer table (output shapes and parameter counts) for one image."""
    from torchinfo import summary
    from torchinfo.enums import Units

    stats = summary(
        build_model(arch),
        input_size=(1, 1, 28, 28),
        col_names=("input_size", "output_size", "num_params"),
        verbose=0,
    )
    # torchinfo formats its unit enum with str() ("Units.MEGABYTES"), which Python 3.11
    # changed: print the unit's own letter ("M"), as torchinfo meant to.
    return re.sub(r"\bUnits\.(\w+)", lambda m: str(Units[m.group(1)].value), str(stats))


def metrics_path(checkpoint: Path) -> Path:
    """``model.pth`` -> ``model.json``, written beside it."""
    return checkpoint.with_suffix(".json")


def versions() -> dict[str, str]:
    return {
        "fashion_onnx": fashion_onnx.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
    }


def save_checkpoint(result: TrainResult, output: Path, data_source: str) -> Path:
    """Write the plain state_dict and the metrics JSON beside it, both atomically."""
    # Serialise in memory: torch.save names the archive after the file, and the
    # temporary file's random name would make identical weights differ byte-wise.
    buffer = io.BytesIO()
    torch.save(result.model.state_dict(), buffer)
    write_bytes_atomic(output, buffer.getvalue())
    record = {**result.to_dict(), "data_source": data_source, "versions": versions()}
    write_text_atomic(metrics_path(output), json.dumps(record, indent=2) + "\n")
    return output


def train_and_save(
    *,
    arch: str,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    outliers: float | None,
    holdout: bool,
    seed: int,
    data_dir: Path | None,
    download: bool,
    output: Path,
    device: str,
    plots: Path | None,
    max_steps: int | None,
) -> TrainResult:
    """Train one recipe with a progress bar, save the checkpoint and its metrics, plot.

    Raises:
        InvalidArgumentError: a bad setting, or an output that is a directory.
        DataNotFoundError: FashionMNIST could not be found, unpacked or downloaded.
    """
    console = Console(stderr=True)
    config = recipe(
        arch,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        outliers=outliers,
        holdout=holdout,
        seed=seed,
        device=device,
        max_steps=max_steps,
    )
    if output.exists() and output.is_dir():
        raise InvalidArgumentError(
            f"output {output} is a directory; give a file path like model.pth"
        )
    data = load_fashion_mnist(data_dir, download=download)
    held = f", {HELD_OUT:,} of them held out for calibration" if config.holdout else ""
    console.print(
        f"FashionMNIST: {len(data.train_images)} train{held} / {len(data.test_images)} test "
        f"images (source: {data.source})",
        soft_wrap=True,  # paths whole, however long
    )

    progress = Progress(
        TextColumn("[bold]training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        redirect_stdout=False,  # what is printed to stdout goes there, not above the bar
        redirect_stderr=False,
    )

    def on_epoch(m: EpochMetrics) -> None:
        progress.console.print(
            f"Epoch {m.epoch:>2}: Test Error: Accuracy: {100 * m.test_accuracy:>4.1f}%, "
            f"Avg loss: {m.test_loss:>8f}  ({m.seconds:.1f}s)"
        )

    with progress:
        task = progress.add_task("train", total=None)
        result = train(
            data,
            config,
            on_step=lambda step, total: progress.update(task, completed=step, total=total),
            on_epoch=on_epoch,
        )
    save_checkpoint(result, output, data.source)
    console.print(
        f"Done: test accuracy {100 * result.test_accuracy:.2f}% in {result.seconds:.1f}s "
        f"on {result.device}{' (bfloat16 autocast)' if result.bf16 else ''}. "
        f"Saved {output} and {metrics_path(output)}",
        soft_wrap=True,  # paths whole, however long
    )
    if plots is not None:
        from fashion_onnx.train.plots import write_plots

        for path in write_plots(result, data, plots):
            console.print(f"Plot: {path}", soft_wrap=True)
    return result
