"""Known true classes for some files (a CSV of ``file,class``), to count how many were right."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from fashion_onnx.errors import FashionOnnxError


def read_truth(csv_path: str | os.PathLike[str]) -> dict[str, str]:
    """Map each file's resolved path to its true class. ``file`` is relative to the CSV.

    Raises:
        FashionOnnxError: the CSV is missing or has no ``file`` and ``class`` columns.
    """
    csv_path = Path(csv_path)
    try:
        with csv_path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise FashionOnnxError(f"--labels {csv_path}: {exc.strerror}") from None
    if not rows or not {"file", "class"} <= rows[0].keys():
        raise FashionOnnxError(
            f"--labels {csv_path}: expected a CSV with 'file' and 'class' columns"
        )
    return {str((csv_path.parent / row["file"]).resolve()): row["class"] for row in rows}
