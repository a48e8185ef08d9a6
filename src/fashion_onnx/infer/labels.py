"""``--labels``: the true classes a run's rows are judged against.

A CSV with ``file`` and ``class`` columns (paths relative to the CSV's own folder, class
names in any case), or, for array inputs, an IDX label file or a ``.npy`` of class
indices, in order. ``Labels`` is the file as read; ``Truth`` is what the workers judge
rows by (picklable, small).
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fashion_onnx.errors import InvalidArgumentError

if TYPE_CHECKING:
    import numpy as np

    from fashion_onnx.infer.work import Counts


@dataclass(frozen=True)
class Truth:
    """True classes by resolved path (a CSV), or by position among the run's array images
    (an IDX label file or a ``.npy``), as class names (None: a name that is no class, not
    counted)."""

    by_path: dict[str, str | None] = field(default_factory=dict)
    by_index: tuple[str, ...] = ()

    def for_paths(self, paths: Sequence[str]) -> list[str | None]:
        if not self.by_path:
            return [None] * len(paths)
        return [self.by_path.get(os.path.realpath(p)) for p in paths]

    def listed(self, paths: Sequence[str]) -> int:
        """How many of ``paths`` the CSV lists (judged or not)."""
        if not self.by_path:
            return 0
        return sum(os.path.realpath(p) in self.by_path for p in paths)

    def for_array(self, base: int, count: int) -> list[str | None]:
        known = self.by_index[base : base + count]
        return [*known, *[None] * (count - len(known))]


@dataclass(frozen=True)
class Labels:
    """--labels as read: a CSV's rows (the file as written, its resolved path, its class),
    or the class indices of an IDX label file or a ``.npy`` (for array inputs, in order)."""

    path: Path
    rows: list[tuple[str, str, str]]
    indices: np.ndarray | None = None

    def truth(self, class_names: tuple[str, ...]) -> Truth:
        """Each listed file's resolved path -> its true class as the model names it (any
        case in the CSV), or None for a name that is no class (one warning per such
        name); or the array images' classes, in order."""
        if self.indices is not None:
            return Truth(by_index=tuple(class_names[i] for i in self.indices.tolist()))
        canonical = {name.lower(): name for name in class_names}
        unknown: dict[str, int] = {}
        truth: dict[str, str | None] = {}
        for _, resolved, given in self.rows:
            name = canonical.get(given.strip().lower())
            if name is None:
                unknown[given] = unknown.get(given, 0) + 1
            truth[resolved] = name
        for given, count in unknown.items():
            warnings.warn(
                f"--labels {self.path}: {given!r} is not one of the model's classes "
                f"({', '.join(class_names)}); its {count} file(s) are not counted",
                stacklevel=2,
            )
        return Truth(by_path=truth)

    def warn_if_unmatched(self, counts: Counts) -> None:
        """A warning when the CSV lists only some of the inputs, and one that names the
        rule when no listed file (or no array image) was among them."""
        if self.indices is not None and not counts.listed and len(self.indices):
            warnings.warn(
                f"--labels {self.path}: its {len(self.indices)} labels are for array "
                "inputs (IDX, .npy, .npz), in order, and there were none",
                stacklevel=2,
            )
        inputs = counts.classified + counts.failed
        if self.rows and 0 < counts.listed < inputs:
            warnings.warn(
                f"--labels {self.path}: lists {counts.listed:,} of the {inputs:,} inputs; "
                "only those are judged",
                stacklevel=2,
            )
        if counts.listed or not self.rows:
            return
        first = ", ".join(written for written, _, _ in self.rows[:3])
        more = ", ..." if len(self.rows) > 3 else ""
        warnings.warn(
            f"--labels {self.path}: none of its {len(self.rows)} files was among the "
            f"inputs ({first}{more}); its paths are relative to the CSV's folder, "
            f"{self.path.resolve().parent}",
            stacklevel=2,
        )


def labels_inside(arrays: Sequence[str]) -> Labels | None:
    """Without --labels: the labels the array inputs carry (each an ``.npz`` with a
    ``labels`` array), in order; None unless every one of them does."""
    import numpy as np

    from fashion_onnx.infer.arrays import npz_labels

    found = [npz_labels(a) if a.lower().endswith(".npz") else None for a in arrays]
    known = [f for f in found if f is not None]
    if not arrays or len(known) < len(arrays):
        return None
    return Labels(Path(arrays[0]), [], np.concatenate(known))


def read_labels(path: str | os.PathLike[str]) -> Labels:
    """Read --labels: a CSV whose ``file`` is relative to the CSV's folder, or an IDX
    label file or a ``.npy`` of class indices (for array inputs).

    Raises:
        InvalidArgumentError: unreadable, or not such a file (one line with the reason).
    """
    from fashion_onnx.infer.arrays import is_array_file, read_labels_array

    path = Path(path)
    if is_array_file(str(path)):
        return Labels(path, [], read_labels_array(str(path)))
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise InvalidArgumentError(f"--labels {path}: {exc.strerror}") from None
    if not rows or not {"file", "class"} <= rows[0].keys():
        raise InvalidArgumentError(
            f"--labels {path}: expected a CSV with 'file' and 'class' columns"
        )
    for line, row in enumerate(rows, start=2):
        if not row["file"] or row["class"] is None:
            raise InvalidArgumentError(f"--labels {path}, line {line}: expected a file and a class")
    return Labels(
        path, [(r["file"], str((path.parent / r["file"]).resolve()), r["class"]) for r in rows]
    )
