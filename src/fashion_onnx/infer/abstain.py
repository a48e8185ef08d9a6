"""Abstaining: when a row is "not one of mine" (label -1, class ``unknown``).

Two tests, either of which marks a row unknown:
- its top-1 (calibrated) confidence is below ``min_confidence``;
- its OOD score, the energy -logsumexp(logits) (Liu et al. 2020; chosen over the maximum
  softmax probability by measurement, see the README's "How far to trust it"), is above
  ``max_ood_score``. Each exported model records in its metadata (``ood_threshold``) the
  energy that keeps 95% of the real test set: the default threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fashion_onnx.errors import InvalidArgumentError

UNKNOWN_LABEL = -1
UNKNOWN_CLASS = "unknown"


def energy(logits: np.ndarray) -> np.ndarray:
    """The energy OOD score, -logsumexp(logits), (N, C) -> (N,) float64; higher = less like
    the training images."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=1)
    return np.asarray(-(top + np.log(np.exp(z - top[:, None]).sum(axis=1))))


@dataclass(frozen=True)
class Abstain:
    """When rows abstain, and whether their OOD score is shown."""

    min_confidence: float | None = None  # rows whose top-1 probability is below it
    max_ood_score: float | None = None  # rows whose energy is above it
    show_score: bool = False  # the rows gain an ``ood_score`` column

    def __post_init__(self) -> None:
        if self.min_confidence is not None and not 0 <= self.min_confidence <= 1:
            raise InvalidArgumentError(
                f"min_confidence must be in [0, 1], got {self.min_confidence}"
            )

    @property
    def needs_logits(self) -> bool:
        """Whether the engine must return the logits too (the energy score)."""
        return self.show_score or self.max_ood_score is not None

    def unknown(self, probabilities: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
        """(N,) bool: the rows that abstain. ``scores``: their energy, when ``needs_logits``."""
        mask = np.zeros(len(probabilities), dtype=bool)
        if self.min_confidence is not None:
            mask |= probabilities.max(axis=1) < self.min_confidence
        if self.max_ood_score is not None:
            if scores is None:
                raise InvalidArgumentError("max_ood_score needs the rows' OOD scores")
            mask |= scores > self.max_ood_score
        return mask
