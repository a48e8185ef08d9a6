"""The temperature of ``calibrated_probabilities``, fitted on the training images that
``fashion-train`` holds out (never test images), and the energy threshold at which a row
abstains."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fashion_onnx.constants import HELD_OUT, IMAGE_SIZE
from fashion_onnx.errors import DataNotFoundError
from fashion_onnx.eval.measures import (
    DEFAULT_KEEP,
    ECE_BINS,
    expected_calibration_error,
    fit_temperature,
    ood_score,
    softmax,
    threshold_keeping,
)
from fashion_onnx.fashion_mnist import HELD_OUT_SEED, held_out, load_split


@dataclass(frozen=True)
class Calibration:
    """What the export fitted, and how it did on the test set."""

    temperature: float  # 1.0 when no training images were found
    fitted_on: str  # what the temperature was fitted on
    ece_bins: int
    ece_before: float | None  # test-set ECE of ``probabilities``; None without test labels
    ece_after: float | None  # test-set ECE of ``calibrated_probabilities``
    ood_score: str  # the score ``ood_threshold`` applies to
    ood_threshold: float | None  # rows scoring above it abstain; keeps 95% of the test set
    ood_keep: float  # the share of test images the threshold keeps

    def metadata(self) -> str:
        """The JSON the file's ``calibration`` metadata holds."""
        return json.dumps(
            {
                "fitted_on": self.fitted_on,
                "method": "temperature scaling (Guo et al. 2017), NLL",
                "ece_bins": self.ece_bins,
                "test_ece_probabilities": self.ece_before,
                "test_ece_calibrated_probabilities": self.ece_after,
                "ood_score": self.ood_score,
                "ood_threshold_keeps_test": self.ood_keep,
            }
        )


def training_slice(data_dir: Path | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The held-out training images (``fashion_mnist.held_out``: float32 (N, 1, 28, 28) in
    [0, 1]) and their labels; None when the training set is not available. Never test
    images. A model from ``fashion-train`` never trained on them (``holdout``, on by
    default), so T is fitted on images as new to it as the test set is."""
    try:
        images, labels = load_split("train", data_dir)
    except DataNotFoundError:
        return None
    pick = held_out(len(images))
    x = (images[pick].astype(np.float32) / 255).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)
    return x, labels[pick].astype(np.int64)


@torch.inference_mode()
def fit_calibration(
    model: nn.Module,
    data_dir: Path | None,
    test_logits: np.ndarray | None,
    test_labels: np.ndarray | None,
    *,
    use_training: bool = True,
) -> Calibration:
    """Fit T on the training slice by NLL; measure ECE and set the abstain threshold on the
    test set's ``test_logits`` (which T never sees).

    Args:
        model: the checkpoint's model (eval mode is set here).
        data_dir: where FashionMNIST is (see ``fashion_mnist.load_split``).
        test_logits: torch's logits on the test set, or None (random inputs).
        test_labels: the test labels, or None.
        use_training: False leaves T = 1 (no training images read).
    """
    train = training_slice(data_dir) if use_training else None
    if train is None:
        temperature, fitted_on = 1.0, "nothing (no training images found): T = 1"
    else:
        logits = model.eval()(torch.from_numpy(train[0])).numpy()
        temperature = fit_temperature(logits, train[1])
        fitted_on = (
            f"the {HELD_OUT:,} FashionMNIST training images fashion-train holds out "
            f"(seed {HELD_OUT_SEED}), never test images"
        )
    before = after = threshold = None
    keep = DEFAULT_KEEP
    if test_logits is not None:
        energy = ood_score("energy", test_logits, softmax(test_logits))
        threshold = threshold_keeping(energy, DEFAULT_KEEP)
        keep = float((energy <= threshold).mean())
        if test_labels is not None:
            labels = np.asarray(test_labels, dtype=np.int64)
            before = expected_calibration_error(softmax(test_logits), labels)
            after = expected_calibration_error(softmax(test_logits, temperature), labels)
    return Calibration(temperature, fitted_on, ECE_BINS, before, after, "energy", threshold, keep)
