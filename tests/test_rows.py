"""infer/rows.py: the one place probabilities become rows."""

from __future__ import annotations

import numpy as np

from fashion_onnx.infer.abstain import UNKNOWN_CLASS, UNKNOWN_LABEL
from fashion_onnx.infer.rows import RowValues, row_values

NAMES = tuple(f"c{i}" for i in range(4))


class _AbstainOnFirst:
    show_score = False

    def unknown(self, probabilities: np.ndarray, ood_scores: object) -> np.ndarray:
        return np.arange(len(probabilities)) == 0


def test_one_row_and_many_give_the_same_top_k() -> None:
    p = np.array([[0.1, 0.4, 0.2, 0.3], [0.25, 0.25, 0.4, 0.1]], np.float32)
    many = row_values(p, NAMES, 3)
    ones = [row_values(p[i : i + 1], NAMES, 3) for i in range(2)]
    assert many.top_k() == [one.top_k()[0] for one in ones]
    assert many.top_k()[0] == [(1, "c1", p[0, 1]), (3, "c3", p[0, 3]), (2, "c2", p[0, 2])]
    assert many.top_k()[1][1][0] == 0  # a tie: the lower label first
    assert many.labels.tolist() == [1, 2] and many.classes() == ["c1", "c2"]
    assert many.confidences.tolist() == [p[0, 1], p[1, 2]]


def test_abstaining_rows_read_unknown() -> None:
    p = np.array([[0.1, 0.4, 0.2, 0.3], [0.25, 0.25, 0.4, 0.1]], np.float32)
    rows = row_values(p, list(NAMES), 2, abstain=_AbstainOnFirst())  # type: ignore[arg-type]
    assert rows.any_unknown is True
    assert rows.labels.tolist() == [UNKNOWN_LABEL, 2]
    assert rows.classes() == [UNKNOWN_CLASS, "c2"]
    assert rows.top_k()[0][0][0] == 1  # what the model thought, still


def test_rows_made_by_hand_still_abstain() -> None:
    """Without row_values' any_unknown, ``unknown`` itself is asked."""
    rows = RowValues(NAMES, np.array([[1], [2]]), np.array([[0.4], [0.4]]), np.array([True, False]))
    assert rows.labels.tolist() == [UNKNOWN_LABEL, 2]
    assert rows.classes() == [UNKNOWN_CLASS, "c2"]
