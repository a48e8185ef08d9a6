"""The one place probabilities become rows: label, class, confidence, the top k, unknown.

Every output format (``output``), the server's classify route and both Ray writers read
their rows from ``RowValues``, so top-k order, confidences and "unknown" are decided once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fashion_onnx.infer.abstain import UNKNOWN_CLASS, UNKNOWN_LABEL, Abstain


@dataclass(frozen=True)
class RowValues:
    """The rows of n images.

    top_labels: (n, k) the k most probable classes, most probable first (ties: the lower
        label first).
    top_probabilities: (n, k) their probabilities.
    unknown: (n,) rows that abstain (``Abstain``); their label reads -1, their class
        ``unknown``, and their top-k still say what the model thought.
    ood_scores: (n,) the energy, where the rows show it; else None.
    any_unknown: whether any row abstains, as ``row_values`` found it (``unknown.any()``
        asked once: 2 us a call, a tenth of a one-image server request's row); None (a
        RowValues made by hand) asks ``unknown`` each time.
    """

    class_names: tuple[str, ...]
    top_labels: np.ndarray
    top_probabilities: np.ndarray
    unknown: np.ndarray
    ood_scores: np.ndarray | None = None
    any_unknown: bool | None = None

    def __len__(self) -> int:
        return len(self.top_labels)

    def _abstains(self) -> bool:
        known = self.any_unknown
        return bool(self.unknown.any()) if known is None else known

    @property
    def labels(self) -> np.ndarray:
        """(n,) int64: the top-1 label, -1 where the row abstains."""
        first = self.top_labels[:, 0].astype(np.int64)
        return np.where(self.unknown, UNKNOWN_LABEL, first) if self._abstains() else first

    @property
    def confidences(self) -> np.ndarray:
        """(n,) float32: the top-1 probability (kept where the row abstains)."""
        return np.asarray(self.top_probabilities[:, 0], dtype=np.float32)

    def classes(self) -> list[str]:
        """The top-1 class names, ``unknown`` where the row abstains."""
        names = self.class_names
        first = self.top_labels[:, 0].tolist()
        if not self._abstains():
            return [names[i] for i in first]
        return [
            UNKNOWN_CLASS if no else names[i]
            for i, no in zip(first, self.unknown.tolist(), strict=True)
        ]

    def top_k(self) -> list[list[tuple[int, str, float]]]:
        """Per row, its (label, class, probability) for the k most probable classes."""
        names = self.class_names
        return [
            [(i, names[i], p) for i, p in zip(labels, probs, strict=True)]
            for labels, probs in zip(
                self.top_labels.tolist(), self.top_probabilities.tolist(), strict=True
            )
        ]


def row_values(
    probabilities: np.ndarray,
    class_names: Sequence[str],
    top_k: int = 1,
    abstain: Abstain | None = None,
    ood_scores: np.ndarray | None = None,
) -> RowValues:
    """(n, classes) probabilities -> their rows; ``abstain`` decides "unknown" (its
    ``ood_scores`` are needed when it thresholds or shows them)."""
    k = max(1, min(top_k, probabilities.shape[1])) if probabilities.ndim == 2 else 1
    if k == 1:
        order = probabilities.argmax(axis=1)[:, None]
    else:
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    # indexing, not take_along_axis (5 us); one row (the server's one-image requests)
    # without the row index (1 us, not 3)
    if len(probabilities) == 1:
        top = probabilities[0][order]
    else:
        top = probabilities[np.arange(len(probabilities))[:, None], order]
    unknown = np.zeros(len(probabilities), dtype=bool)
    shown, any_unknown = None, False
    if abstain is not None:
        unknown = np.asarray(abstain.unknown(probabilities, ood_scores), dtype=bool)
        shown, any_unknown = (ood_scores if abstain.show_score else None), bool(unknown.any())
    names = class_names if isinstance(class_names, tuple) else tuple(class_names)
    return RowValues(names, order, top, unknown, shown, any_unknown)
