"""PNG plots in the manner of the seed's matplotlib notes. Each file is written atomically."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fashion_onnx.constants import CLASS_NAMES
from fashion_onnx.errors import InvalidArgumentError
from fashion_onnx.fileio import atomic_path
from fashion_onnx.models import load_model
from fashion_onnx.train.config import TrainConfig
from fashion_onnx.train.data import FashionData, load_fashion_mnist, to_input
from fashion_onnx.train.loop import EpochMetrics, TrainResult

CURVES_PNG = "training_curves.png"
CLASS_BARS_PNG = "class_accuracy.png"
SAMPLES_PNG = "test_samples.png"


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def plot_curves(result: TrainResult, path: Path) -> Path:
    """Loss (train and test) above test accuracy, per epoch: ``subplots(2, 1)``."""
    return _save(curves_figure(result), path)


def curves_figure(result: TrainResult) -> Figure:
    """The training curves' figure. Epochs are whole numbers on the axis, half an epoch
    of margin each side, so a one-epoch run shows its points at epoch 1 (not a lone dot
    among ticks from 0.945 to 1.050)."""
    epochs = [e.epoch for e in result.epochs]
    fig, axs = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    axs[0].plot(
        epochs,
        [e.train_loss for e in result.epochs],
        marker="o",
        label="train (dropout, outlier exposure)",
    )
    axs[0].plot(epochs, [e.test_loss for e in result.epochs], marker="o", label="test")
    axs[0].set_ylabel("cross-entropy loss")
    axs[0].set_title("Training curves")
    axs[0].legend()
    axs[0].grid(True)
    axs[1].plot(epochs, [100 * e.test_accuracy for e in result.epochs], marker="o", color="C2")
    axs[1].set_ylabel("test accuracy (%)")
    axs[1].set_xlabel("epoch")
    axs[1].set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    axs[1].xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axs[1].grid(True)
    fig.tight_layout()
    return fig


def plot_class_accuracy(result: TrainResult, path: Path) -> Path:
    """Grouped bars of per-class accuracy, train vs test, with values on the bars."""
    x = np.arange(len(CLASS_NAMES))
    width = 0.4
    fig, ax = plt.subplots(figsize=(11, 5))
    train_bars = ax.bar(
        x - width / 2, [100 * a for a in result.train_class_accuracy], width, label="train"
    )
    test_bars = ax.bar(
        x + width / 2, [100 * a for a in result.test_class_accuracy], width, label="test"
    )
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy by class")
    ax.set_xticks(x)
    ax.set_xticklabels(CLASS_NAMES, rotation=20)
    ax.set_ylim(0, 109)
    ax.bar_label(train_bars, padding=3, fmt="%.0f", fontsize=8)
    ax.bar_label(test_bars, padding=3, fmt="%.0f", fontsize=8)
    ax.legend(loc="lower left")
    fig.tight_layout()
    return _save(fig, path)


@torch.inference_mode()
def plot_samples(result: TrainResult, data: FashionData, path: Path, seed: int = 0) -> Path:
    """A 3x3 grid of random test images, titled predicted vs true (red when wrong)."""
    pick = torch.randperm(len(data.test_images), generator=torch.Generator().manual_seed(seed))[:9]
    predicted = result.model(to_input(data.test_images[pick])).argmax(1)
    fig = plt.figure(figsize=(8, 8))
    for i, (idx, pred) in enumerate(zip(pick.tolist(), predicted.tolist(), strict=True), start=1):
        true = int(data.test_labels[idx])
        ax = fig.add_subplot(3, 3, i)
        ax.set_title(
            f"pred: {CLASS_NAMES[pred]}\ntrue: {CLASS_NAMES[true]}",
            color="black" if pred == true else "red",
            fontsize=10,
        )
        ax.axis("off")
        ax.imshow(data.test_images[idx].numpy(), cmap="gray")
    fig.tight_layout()
    return _save(fig, path)


def result_from_record(checkpoint: Path) -> TrainResult:
    """A finished run, rebuilt without training: the weights from ``checkpoint``, the
    config and per-epoch metrics from the metrics JSON that fashion-train wrote beside it.

    Raises:
        CheckpointError: the checkpoint is unreadable or not this package's model.
        InvalidArgumentError: the metrics JSON is missing or not fashion-train's.
    """
    record_path = checkpoint.with_suffix(".json")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        config = TrainConfig(**{k: v for k, v in record["config"].items() if k in known})
        epochs = [EpochMetrics(**e) for e in record["epochs"]]
        train_classes, test_classes = record["train_class_accuracy"], record["test_class_accuracy"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidArgumentError(
            f"{record_path}: not the metrics of a fashion-train run ({exc})"
        ) from exc
    return TrainResult(
        model=load_model(checkpoint),
        config=config,
        device=record.get("device", "cpu"),
        epochs=epochs,
        train_class_accuracy=train_classes,
        test_class_accuracy=test_classes,
        seconds=record.get("seconds", 0.0),
        bf16=record.get("bf16", False),
    )


def replot(checkpoint: Path, out_dir: Path, data_dir: Path | None = None) -> list[Path]:
    """Draw a finished run's plots again with this code, without training: the curves
    and per-class bars from its metrics JSON, the sample grid from its checkpoint's
    predictions on the real test set (no download).

    Raises:
        CheckpointError, InvalidArgumentError: see ``result_from_record``.
        DataNotFoundError: FashionMNIST is not available offline.
    """
    result = result_from_record(Path(checkpoint))
    return write_plots(result, load_fashion_mnist(data_dir, download=False), Path(out_dir))


def write_plots(result: TrainResult, data: FashionData, out_dir: Path) -> list[Path]:
    """Write all three PNGs into ``out_dir`` and return their paths."""
    out_dir = Path(out_dir)
    return [
        plot_curves(result, out_dir / CURVES_PNG),
        plot_class_accuracy(result, out_dir / CLASS_BARS_PNG),
        plot_samples(result, data, out_dir / SAMPLES_PNG, seed=result.config.seed),
    ]
