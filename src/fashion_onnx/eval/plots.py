"""fashion-eval --plots: the confusion matrix and the reliability diagram as PNGs.

matplotlib is imported inside the function only: it is not in the base install."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fashion_onnx.errors import InvalidArgumentError
from fashion_onnx.eval.run import EvalReport


def _pyplot() -> Any:  # matplotlib.pyplot, imported here only
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise InvalidArgumentError(
            "--plots needs matplotlib: pip install matplotlib (or the [train] extra)"
        ) from exc
    return plt


def write_plots(report: EvalReport, folder: Path, prefix: str = "") -> list[Path]:
    """Write confusion.png (counts in the cells) and reliability.png into ``folder``.

    Returns:
        The files written.

    Raises:
        InvalidArgumentError: matplotlib is not installed.
    """
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    matrix = np.array(report.confusion)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    ax.imshow(matrix, cmap="Blues")
    names = report.class_names
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for (i, j), count in np.ndenumerate(matrix):
        dark = count > matrix.max() / 2
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if dark else "black",
        )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{report.model}: top-1 {100 * report.top1:.2f}% on {report.images:,} images")
    fig.tight_layout()
    written.append(folder / f"{prefix}confusion.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    edges = np.linspace(0, 1, report.ece_bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    for key, colour, label in (
        ("probabilities", "tab:grey", f"probabilities (ECE {report.ece_probabilities:.4f})"),
        ("calibrated", "tab:blue", f"calibrated (ECE {report.ece_calibrated:.4f})"),
    ):
        bins = report.reliability[key]
        acc = np.array(bins["accuracy"])
        seen = np.array(bins["counts"]) > 0
        ax.bar(centres[seen], acc[seen], width=width * 0.9, alpha=0.5, color=colour, label=label)
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    ax.set_xlabel("confidence (top-1)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{report.model}: reliability, {report.ece_bins} bins")
    ax.legend(loc="upper left")
    fig.tight_layout()
    written.append(folder / f"{prefix}reliability.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written
