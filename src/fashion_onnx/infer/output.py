"""Write predictions as a plain table, CSV, JSON or JSON Lines, row by row."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from typing import TextIO

import numpy as np

FORMATS: tuple[str, ...] = ("table", "csv", "json", "jsonl")
# The format an output file's suffix (any case) stands for; other suffixes say nothing.
SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


def format_of(output: str) -> tuple[str, str] | None:
    """(suffix, format) when ``output``'s suffix names a format (``out.CSV`` -> csv), else None."""
    dot = output.rfind(".")
    if dot <= max(output.rfind("/"), output.rfind("\\")) + 1:
        return None  # no suffix ("predictions"), or a dotfile (".csv")
    suffix = output[dot:].lower()
    return (suffix, SUFFIX_FORMATS[suffix]) if suffix in SUFFIX_FORMATS else None


def _marks(stream: TextIO) -> tuple[str, str]:
    """(right, wrong) markers the stream can encode: ✓ and ✗, else ok and x."""
    try:
        "✓✗".encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return "ok", "x"
    return "✓", "✗"


class RowWriter:
    """Streams rows to ``stream`` in one of ``FORMATS``; call ``close()`` at the end.

    ``labelled``: the table gets a ``true`` column, ✓ on a right row and ``✗ Coat`` (the
    true class) on a wrong one, blank where the true class is unknown; other formats are
    unchanged.
    """

    def __init__(
        self,
        stream: TextIO,
        fmt: str,
        class_names: Sequence[str],
        top_k: int,
        *,
        labelled: bool = False,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
        self.stream, self.fmt, self.names, self.top_k = stream, fmt, list(class_names), top_k
        self._rows = 0
        self._marks = _marks(stream) if labelled and fmt == "table" else None
        if fmt == "csv":
            self._csv = csv.writer(stream, lineterminator="\n")
            header = ["path", "label", "class", "confidence"]
            for rank in range(2, top_k + 1):
                header += [f"class_{rank}", f"confidence_{rank}"]
            self._csv.writerow(header)
        elif fmt == "json":
            stream.write("[")
        elif fmt == "table":
            extra = "".join(f"  {'#' + str(r):<20}" for r in range(2, top_k + 1))
            true = f"  {'true':<14}" if self._marks else ""
            stream.write(f"{'class':<12}  {'conf':>6}{extra}{true}  path\n")

    def write(
        self,
        paths: Sequence[str],
        probabilities: np.ndarray,
        true_classes: Sequence[str | None] | None = None,
    ) -> None:
        """Write one row per path. ``true_classes`` (per path, None where unknown) marks
        the table's rows when the writer is ``labelled``."""
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, : self.top_k]
        truths = true_classes if true_classes is not None else [None] * len(paths)
        for path, probs, ranks, truth in zip(paths, probabilities, order, truths, strict=True):
            top = [(int(i), self.names[i], float(probs[i])) for i in ranks]
            self._write_one(path, top, truth)
            self._rows += 1

    def _write_one(self, path: str, top: list[tuple[int, str, float]], truth: str | None) -> None:
        label, name, conf = top[0]
        if self.fmt == "csv":
            row: list[object] = [path, label, name, f"{conf:.6f}"]
            for _, n, p in top[1:]:
                row += [n, f"{p:.6f}"]
            self._csv.writerow(row)
        elif self.fmt == "table":
            extra = "".join(f"  {f'{n} {100 * p:.1f}%':<20}" for _, n, p in top[1:])
            if self._marks:
                right, wrong = self._marks
                mark = "" if truth is None else right if truth == name else f"{wrong} {truth}"
                extra += f"  {mark:<14}"
            self.stream.write(f"{name:<12}  {100 * conf:5.1f}%{extra}  {path}\n")
        else:
            record = {
                "path": path,
                "label": label,
                "class": name,
                "confidence": round(conf, 6),
                "top_k": [{"label": i, "class": n, "probability": round(p, 6)} for i, n, p in top],
            }
            text = json.dumps(record, ensure_ascii=False)
            if self.fmt == "jsonl":
                self.stream.write(text + "\n")
            else:
                self.stream.write(("\n  " if self._rows == 0 else ",\n  ") + text)

    def close(self) -> None:
        if self.fmt == "json":
            self.stream.write("\n]\n" if self._rows else "]\n")
        self.stream.flush()
