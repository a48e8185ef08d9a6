"""The measures fashion-eval reports, against cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from fashion_onnx.errors import InvalidArgumentError
from fashion_onnx.eval.measures import (
    auroc,
    confusion_matrix,
    expected_calibration_error,
    fit_temperature,
    ood_score,
    precision_recall,
    reliability,
    softmax,
    threshold_keeping,
    top_k_accuracy,
)

# Four rows worked out by hand with 15 bins:
#   conf 0.95 right -> bin 14;  0.62 wrong, 0.62 right -> bin 9;  0.70 wrong -> bin 10
#   ECE = 1/4 |1 - 0.95| + 2/4 |0.5 - 0.62| + 1/4 |0 - 0.70| = 0.0125 + 0.06 + 0.175
HAND_PROBS = np.array([[0.95, 0.05], [0.62, 0.38], [0.38, 0.62], [0.70, 0.30]])
HAND_LABELS = np.array([0, 1, 1, 1])


def test_ece_agrees_with_a_hand_computed_case() -> None:
    assert expected_calibration_error(HAND_PROBS, HAND_LABELS) == pytest.approx(0.2475)
    bins = reliability(HAND_PROBS, HAND_LABELS)
    assert bins.counts.tolist() == [0] * 9 + [2, 1, 0, 0, 0, 1]
    assert bins.accuracy[9] == 0.5 and bins.confidence[9] == pytest.approx(0.62)


def test_ece_is_zero_when_confidence_is_accuracy_and_uses_15_bins_by_default() -> None:
    probs = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probs, np.array([0, 0, 0, 1])) == pytest.approx(0)
    # 0.61 and 0.69 share a bin of 10 (0.6..0.7) but not of 15 (0.6..0.667, 0.667..0.733)
    probs = np.array([[0.61, 0.39], [0.69, 0.31]])
    labels = np.array([1, 0])
    assert expected_calibration_error(probs, labels) == pytest.approx((0.61 + 0.31) / 2)
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(0.15)


def test_accuracy_confusion_precision_recall() -> None:
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.5, 0.1, 0.4]])
    labels = np.array([0, 2, 2, 2])
    assert top_k_accuracy(probs, labels, 1) == 0.5
    assert top_k_accuracy(probs, labels, 2) == 1.0
    matrix = confusion_matrix(probs.argmax(1), labels, 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 0, 0], [1, 1, 1]]
    precision, recall = precision_recall(matrix)
    assert precision[0] == 0.5 and np.isnan(recall[1]) and recall[2] == pytest.approx(1 / 3)


def test_fit_temperature_recovers_the_temperature_the_labels_were_drawn_with() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20_000, 10))
    labels = np.array([rng.choice(10, p=p) for p in softmax(logits, 2.5)])
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.05)
    assert fit_temperature(logits * 0.4, labels) == pytest.approx(1.0, rel=0.05)


def test_auroc_counts_ties_as_half_and_scores_point_the_right_way() -> None:
    assert auroc(np.array([0.0, 1.0]), np.array([1.0, 2.0])) == pytest.approx(0.875)
    assert auroc(np.array([0.0, 0.1]), np.array([5.0, 6.0])) == 1.0
    logits = np.array([[10.0, 0.0], [0.1, 0.0]])  # sure, then unsure
    energy = ood_score("energy", logits, softmax(logits))
    msp = ood_score("msp", logits, softmax(logits))
    assert energy[1] > energy[0] and msp[1] > msp[0]
    with pytest.raises(InvalidArgumentError, match="logits"):
        ood_score("energy", None, softmax(logits))


def test_threshold_keeps_the_share_asked_for() -> None:
    scores = np.arange(1000.0)
    threshold = threshold_keeping(scores, 0.95)
    assert (scores <= threshold).mean() == pytest.approx(0.95, abs=0.002)
