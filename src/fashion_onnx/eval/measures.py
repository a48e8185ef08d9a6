"""Measures of a classifier from arrays: accuracy, confusion, calibration, OOD separation.

Everything here takes probabilities or logits ``(N, C)`` and labels ``(N,)`` as numpy
arrays and returns numbers or arrays; it knows nothing of models, files or plots. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fashion_onnx.errors import InvalidArgumentError

ECE_BINS = 15  # Guo et al. 2017 use 15 equal-width confidence bins
OOD_SCORES: tuple[str, ...] = ("energy", "msp")
DEFAULT_KEEP = 0.95  # the default abstain threshold keeps this share of in-distribution images


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature) along the last axis, in float64 for stability."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def logsumexp(logits: np.ndarray) -> np.ndarray:
    """log(sum(exp(logits))) along the last axis, (N, C) -> (N,)."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=-1)
    return np.asarray(top + np.log(np.exp(z - top[:, None]).sum(axis=-1)))


def _check(scores: np.ndarray, labels: np.ndarray) -> None:
    if scores.ndim != 2 or labels.shape != (len(scores),):
        raise InvalidArgumentError(
            f"expected scores (N, C) and labels (N,), got {scores.shape} and {labels.shape}"
        )


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """The share of rows whose true label is among the ``k`` highest scores.

    Raises:
        InvalidArgumentError: shapes that do not match, or ``k`` outside 1..C.
    """
    _check(scores, labels)
    if not 1 <= k <= scores.shape[1]:
        raise InvalidArgumentError(f"k must be in 1..{scores.shape[1]}, got {k}")
    if not len(labels):
        return float("nan")
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) int64 counts; row = true class, column = predicted class."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return matrix


def precision_recall(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class (precision, recall) from a confusion matrix; NaN where undefined (0/0)."""
    right = np.diag(confusion).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = right / confusion.sum(axis=0)
        recall = right / confusion.sum(axis=1)
    return precision, recall


@dataclass(frozen=True)
class Reliability:
    """Top-1 confidence against accuracy, in equal-width confidence bins."""

    edges: np.ndarray  # (bins + 1,) from 0 to 1; bin b holds confidences in (edges[b], edges[b+1]]
    counts: np.ndarray  # (bins,) rows per bin
    confidence: np.ndarray  # (bins,) mean top-1 confidence; NaN for an empty bin
    accuracy: np.ndarray  # (bins,) share right; NaN for an empty bin

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of (rows share) x |accuracy - confidence|."""
        seen = self.counts > 0
        gap = np.abs(self.accuracy[seen] - self.confidence[seen])
        return float((self.counts[seen] / self.counts.sum() * gap).sum())


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    """Bin the rows by top-1 confidence (Guo et al.'s (m-1)/M < c <= m/M bins).

    Raises:
        InvalidArgumentError: shapes that do not match, no rows, or ``bins`` < 1.
    """
    _check(probabilities, labels)
    if bins < 1 or not len(labels):
        raise InvalidArgumentError(
            f"need bins >= 1 and at least one row, got {bins}, {len(labels)}"
        )
    confidence = probabilities.max(axis=1).astype(np.float64)
    right = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_conf = np.bincount(index, confidence, bins) / counts
        mean_right = np.bincount(index, right, bins) / counts
    return Reliability(np.linspace(0, 1, bins + 1), counts, mean_conf, mean_right)


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE of the top-1 confidence with ``bins`` equal-width bins (see ``reliability``)."""
    return reliability(probabilities, labels, bins).ece


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean -log softmax(logits / temperature)[label]."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    return float((logsumexp(z) - z[np.arange(len(z)), labels]).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the NLL of softmax(logits / T) (temperature scaling, Guo
    et al. 2017): a golden-section search over log T in [1/20, 20]; NLL is convex in 1/T.

    Raises:
        InvalidArgumentError: shapes that do not match, or no rows.
    """
    _check(logits, labels)
    if not len(labels):
        raise InvalidArgumentError("cannot fit a temperature on zero rows")
    lo, hi = np.log(1 / 20), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa = negative_log_likelihood(logits, labels, float(np.exp(a)))
    fb = negative_log_likelihood(logits, labels, float(np.exp(b)))
    for _ in range(80):  # the bracket shrinks 0.618x a step: far below float precision
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = negative_log_likelihood(logits, labels, float(np.exp(a)))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = negative_log_likelihood(logits, labels, float(np.exp(b)))
    return float(np.exp((lo + hi) / 2))


def ood_score(kind: str, logits: np.ndarray | None, probabilities: np.ndarray) -> np.ndarray:
    """How unlike the training images each row looks; higher = less like them.

    Args:
        kind: "energy" (Liu et al. 2020: -logsumexp(logits)) or "msp" (Hendrycks & Gimpel
            2017: 1 - the top-1 probability).
        logits: (N, C), needed for energy.
        probabilities: (N, C), used for msp.

    Raises:
        InvalidArgumentError: an unknown kind, or energy without logits.
    """
    if kind == "energy":
        if logits is None:
            raise InvalidArgumentError("the energy score needs the model's logits")
        return -logsumexp(logits)
    if kind == "msp":
        return np.asarray(1.0 - probabilities.max(axis=1), dtype=np.float64)
    raise InvalidArgumentError(f"unknown OOD score {kind!r}; choose from {', '.join(OOD_SCORES)}")


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """Area under the ROC curve of telling ``out`` rows from ``in`` rows by a score that is
    higher for ``out`` (the Mann-Whitney U statistic; ties count one half).

    Raises:
        InvalidArgumentError: either side is empty.
    """
    if not len(in_scores) or not len(out_scores):
        raise InvalidArgumentError("AUROC needs rows on both sides")
    both = np.concatenate([np.asarray(out_scores, float), np.asarray(in_scores, float)])
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    # the average rank (1-based) of each distinct value, so that ties share it
    average = np.cumsum(counts) - (counts - 1) / 2
    ranks = average[inverse]
    n_out, n_in = len(out_scores), len(in_scores)
    u = ranks[:n_out].sum() - n_out * (n_out + 1) / 2
    return float(u / (n_out * n_in))


def threshold_keeping(in_scores: np.ndarray, keep: float = DEFAULT_KEEP) -> float:
    """The score below or at which ``keep`` of ``in_scores`` lie: rows above it abstain.

    Raises:
        InvalidArgumentError: ``keep`` outside (0, 1], or no scores.
    """
    if not 0 < keep <= 1 or not len(in_scores):
        raise InvalidArgumentError(f"keep must be in (0, 1] with scores, got {keep}")
    return float(np.quantile(np.asarray(in_scores, float), keep, method="higher"))


@dataclass(frozen=True)
class Separation:
    """How well a score tells one OOD set from the in-distribution set."""

    name: str  # the OOD set
    images: int
    auroc: float
    flagged: float  # share of the OOD set above the threshold (marked unknown)


def separation(
    name: str, in_scores: np.ndarray, out_scores: np.ndarray, threshold: float
) -> Separation:
    """AUROC of ``out`` against ``in`` and the share of ``out`` above ``threshold``."""
    flagged = float((np.asarray(out_scores) > threshold).mean())
    return Separation(name, len(out_scores), auroc(in_scores, out_scores), flagged)
