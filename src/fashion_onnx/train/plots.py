"""PNG plots in the manner of the seed's matplotlib notes. Each file is written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fashion_onnx.constants import CLASS_NAMES
from fashion_onnx.fileio import atomic_path
from fashion_onnx.train.data import FashionData, to_input
from fashion_onnx.train.loop import TrainResult

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
    epochs = [e.epoch for e in result.epochs]
    fig, axs = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    axs[0].plot(
        epochs,
        [e.train_loss for e in result.epochs],
        marker="o",
        label="train (dropout, label smoothing)",
    )
    axs[0].plot(epochs, [e.test_loss for e in result.epochs], marker="o", label="test")
    axs[0].set_ylabel("cross-entropy loss")
    axs[0].set_title("Training curves")
    axs[0].legend()
    axs[0].grid(True)
    axs[1].plot(epochs, [100 * e.test_accuracy for e in result.epochs], marker="o", color="C2")
    axs[1].set_ylabel("test accuracy (%)")
    axs[1].set_xlabel("epoch")
    axs[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axs[1].grid(True)
    fig.tight_layout()
    return _save(fig, path)


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


def write_plots(result: TrainResult, data: FashionData, out_dir: Path) -> list[Path]:
    """Write all three PNGs into ``out_dir`` and return their paths."""
    out_dir = Path(out_dir)
    return [
        plot_curves(result, out_dir / CURVES_PNG),
        plot_class_accuracy(result, out_dir / CLASS_BARS_PNG),
        plot_samples(result, data, out_dir / SAMPLES_PNG, seed=result.config.seed),
    ]
