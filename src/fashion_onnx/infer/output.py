"""Write predictions as a plain table, CSV, JSON or JSON Lines, row by row."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from fashion_onnx.errors import InvalidArgumentError
from fashion_onnx.infer.abstain import UNKNOWN_CLASS, UNKNOWN_LABEL, Abstain
from fashion_onnx.infer.rows import row_values

FORMATS: tuple[str, ...] = ("table", "csv", "json", "jsonl")
# The format an output file's suffix (any case) stands for; other suffixes say nothing.
SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


_CSV_SPECIAL = frozenset(',"\r\n')  # what makes the csv module quote a field


def format_of(output: str) -> tuple[str, str] | None:
    """(suffix, format) when ``output``'s suffix names a format (``out.CSV`` -> csv), else None."""
    dot = output.rfind(".")
    if dot <= max(output.rfind("/"), output.rfind("\\")) + 1:
        return None  # no suffix ("predictions"), or a dotfile (".csv")
    suffix = output[dot:].lower()
    return (suffix, SUFFIX_FORMATS[suffix]) if suffix in SUFFIX_FORMATS else None


def pick_format(fmt: str | None, output: str | None) -> str:
    """--format as given, else the one -o's suffix names, else table.

    Raises:
        InvalidArgumentError: a suffix that names another format than the one given
            (``--format json -o out.csv``).
    """
    implied = format_of(output) if output is not None else None
    if fmt is None:
        return implied[1] if implied else "table"
    if implied is not None and implied[1] != fmt:
        raise InvalidArgumentError(
            f"--output {output} ends in {implied[0]}, but --format is {fmt}: change one of "
            "them (or leave --format out: the suffix decides)"
        )
    return fmt


def _marks(stream: TextIO) -> tuple[str, str]:
    """(right, wrong) markers the stream can encode: ✓ and ✗, else ok and x."""
    try:
        "✓✗".encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return "ok", "x"
    return "✓", "✗"


@dataclass(frozen=True)
class RowFormat:
    """How rows look: one of ``FORMATS``, the model's class names, ``top_k`` classes a row.

    ``render`` turns a chunk of results into its text where the results are (in the
    worker processes); the writer only joins the texts, so every format streams.
    ``marks``: (right, wrong) markers of the table's ``true`` column (``--labels``), or
    None for no such column; other formats are unchanged by labels.
    ``abstain``: rows that abstain read label -1, class ``unknown`` (their confidences
    stay), and CSV and the table get a ``guess`` column, the model's most probable class
    (JSON's ``top_k`` holds it); ``show_score`` adds an ``ood_score`` column. None: rows
    as before.
    """

    fmt: str
    class_names: tuple[str, ...]
    top_k: int = 1
    marks: tuple[str, str] | None = None
    abstain: Abstain | None = None

    @property
    def _score(self) -> bool:
        return self.abstain is not None and self.abstain.show_score

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.fmt!r}")

    def header(self) -> str:
        if self.fmt == "csv":
            names = ["path", "label", "class", "confidence"]
            names += ["guess"] if self.abstain is not None else []
            for rank in range(2, self.top_k + 1):
                names += [f"class_{rank}", f"confidence_{rank}"]
            names += ["ood_score"] if self._score else []
            return ",".join(names) + "\n"
        if self.fmt == "json":
            return "["
        if self.fmt == "table":
            extra = "".join(f"  {'#' + str(r):<20}" for r in range(2, self.top_k + 1))
            true = f"  {'true':<14}" if self.marks else ""
            score = f"  {'ood':>7}" if self._score else ""
            guess = f"  {'guess':<12}" if self.abstain is not None else ""
            return f"{'class':<12}  {'conf':>6}{guess}{score}{extra}{true}  path\n"
        return ""

    def separator(self, first: bool) -> str:
        """What goes before a chunk's text: JSON's records are separated by commas."""
        if self.fmt != "json":
            return ""
        return "\n  " if first else ",\n  "

    def footer(self, rows: int) -> str:
        if self.fmt == "json":
            return "\n]\n" if rows else "]\n"
        return ""

    def render(
        self,
        paths: Sequence[str],
        probabilities: np.ndarray,
        true_classes: Sequence[str | None] | None = None,
        ood_scores: np.ndarray | None = None,
    ) -> str:
        """The rows of ``paths`` (for JSON: the records joined by commas, without the first
        separator). ``true_classes``: per path, None where unknown. ``ood_scores``: per
        path, the energy (needed when ``abstain`` shows or thresholds it)."""
        if not len(paths):
            return ""
        values = row_values(probabilities, self.class_names, self.top_k, self.abstain, ood_scores)
        abstained: list[bool] = values.unknown.tolist()
        scores: list[float] = values.ood_scores.tolist() if values.ood_scores is not None else []
        k = self.top_k
        order = values.top_labels
        top_p = values.top_probabilities.tolist()
        top_i = order.tolist()
        names = self.class_names
        if self.fmt == "csv":
            # nothing to quote, no abstaining: the fast paths (top-1 alone: flat lists)
            if self.abstain is None and _CSV_SPECIAL.isdisjoint("".join([*paths, *names])):
                if k == 1:
                    return "".join(
                        [
                            f"{path},{i},{names[i]},{p:.6f}\n"
                            for path, i, p in zip(
                                paths, order[:, 0].tolist(), [p[0] for p in top_p], strict=True
                            )
                        ]
                    )
                return "".join(
                    f"{path},{i[0]},{names[i[0]]},{p[0]:.6f}"
                    + "".join(f",{names[j]},{q:.6f}" for j, q in zip(i[1:], p[1:], strict=True))
                    + "\n"
                    for path, i, p in zip(paths, top_i, top_p, strict=True)
                )
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            guessed = self.abstain is not None
            writer.writerows(
                [path, *(_top1(i[0], names, no)), f"{p[0]:.6f}"]
                + ([names[i[0]]] if guessed else [])
                + [x for j, q in zip(i[1:], p[1:], strict=True) for x in (names[j], f"{q:.6f}")]
                + ([f"{scores[n]:.6f}"] if scores else [])
                for n, (path, i, p, no) in enumerate(
                    zip(paths, top_i, top_p, abstained, strict=True)
                )
            )
            return buffer.getvalue()
        if self.fmt == "table":
            truths = true_classes if true_classes is not None else [None] * len(paths)
            lines = []
            for n, (path, i, p, truth) in enumerate(zip(paths, top_i, top_p, truths, strict=True)):
                extra = "".join(
                    f"  {f'{names[j]} {100 * q:.1f}%':<20}"
                    for j, q in zip(i[1:], p[1:], strict=True)
                )
                if self.marks:
                    right, wrong = self.marks
                    name = names[i[0]]
                    mark = "" if truth is None else right if truth == name else f"{wrong} {truth}"
                    extra += f"  {mark:<14}"
                shown = UNKNOWN_CLASS if abstained[n] else names[i[0]]
                guess = f"  {names[i[0]]:<12}" if self.abstain is not None else ""
                score = f"  {scores[n]:7.3f}" if scores else ""
                lines.append(f"{shown:<12}  {100 * p[0]:5.1f}%{guess}{score}{extra}  {path}\n")
            return "".join(lines)
        records = [
            json.dumps(
                {
                    "path": path,
                    "label": _top1(i[0], names, no)[0],
                    "class": _top1(i[0], names, no)[1],
                    "confidence": round(p[0], 6),
                    **({"ood_score": round(scores[n], 6)} if scores else {}),
                    "top_k": [
                        {"label": j, "class": names[j], "probability": round(q, 6)}
                        for j, q in zip(i, p, strict=True)
                    ],
                },
                # a file name that is not UTF-8 (surrogates) is escaped: the JSON stays UTF-8
                ensure_ascii=not _is_utf8(path),
            )
            for n, (path, i, p, no) in enumerate(zip(paths, top_i, top_p, abstained, strict=True))
        ]
        if self.fmt == "jsonl":
            return "\n".join(records) + "\n"
        return ",\n  ".join(records)


def _is_utf8(text: str) -> bool:
    """Can ``text`` be written as UTF-8 (a file name that is not holds surrogates)?"""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _top1(label: int, names: tuple[str, ...], abstained: bool) -> tuple[int, str]:
    """(label, class) of a row: (-1, "unknown") where it abstained."""
    return (UNKNOWN_LABEL, UNKNOWN_CLASS) if abstained else (label, names[label])


def write_whole(stream: TextIO, text: str) -> None:
    """Write ``text`` to ``stream``, every byte of it, whatever signal comes meanwhile.

    Where the stream has a file descriptor, the text goes straight to it with ``os.write``
    until all of it is out (the stream's own buffer flushed first, to keep the order). A
    stream's buffered writer can lose data here: when SIGINT or SIGTERM (caught, to stop
    at a chunk boundary) cuts a large write into a full pipe short, the tail CPython's
    BufferedWriter kept back never reaches the pipe, not even on flush (seen on CPython
    3.11, 3.12 and 3.13, under strace too: a Ctrl-C'd run said it had written 1,024 rows to
    the pipe, and the last 38 never came).
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (StringIO, captured)
        fd = -1
    if fd < 0 or os.name != "posix":  # POSIX: no newline translation to do on the way
        stream.write(text)
        return
    stream.flush()
    data = memoryview(text.encode(stream.encoding, stream.errors or "strict"))
    while data:
        data = data[os.write(fd, data) :]


class RowWriter:
    """Streams rows to ``stream`` in one of ``FORMATS``; call ``close()`` at the end.

    ``labelled``: the table gets a ``true`` column, ✓ on a right row and ``✗ Coat`` (the
    true class) on a wrong one, blank where the true class is unknown; other formats are
    unchanged. ``abstain``: see ``RowFormat``. ``resumed_rows``: the stream already holds
    the header and this many rows (a resumed run), so the writer goes on where they end.
    """

    def __init__(
        self,
        stream: TextIO,
        fmt: str,
        class_names: Sequence[str],
        top_k: int,
        *,
        labelled: bool = False,
        abstain: Abstain | None = None,
        resumed_rows: int | None = None,
    ) -> None:
        marks = _marks(stream) if labelled and fmt == "table" else None
        self.rows = RowFormat(fmt, tuple(class_names), top_k, marks, abstain)
        self.stream = stream
        self.written = resumed_rows or 0  # rows so far
        if resumed_rows is None:
            write_whole(stream, self.rows.header())

    def write_rendered(self, text: str, rows: int) -> None:
        """Write a chunk of ``rows`` rows that ``self.rows.render`` made (anywhere)."""
        if rows:
            write_whole(self.stream, self.rows.separator(self.written == 0) + text)
            self.written += rows

    def write(
        self,
        paths: Sequence[str],
        probabilities: np.ndarray,
        true_classes: Sequence[str | None] | None = None,
        ood_scores: np.ndarray | None = None,
    ) -> None:
        """Write one row per path. ``true_classes`` (per path, None where unknown) marks
        the table's rows when the writer is ``labelled``; ``ood_scores`` as in ``render``."""
        text = self.rows.render(paths, probabilities, true_classes, ood_scores)
        self.write_rendered(text, len(paths))

    def close(self) -> None:
        write_whole(self.stream, self.rows.footer(self.written))
        self.stream.flush()
