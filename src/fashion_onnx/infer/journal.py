"""The resume journal of ``fashion-infer -o FILE``: what a run has finished, kept beside
FILE, so that a kill, Ctrl-C, a full disk or a power cut loses at most the chunks in
flight, and ``--resume`` finishes the run with the file an uninterrupted run writes.

``FILE.partial/`` is a folder of three files:

- ``lock``: held (``fcntl.flock``) by the run writing FILE for as long as it runs, and
  naming it (pid, start, command line): a second run on the same FILE, with or without
  ``--resume``, is refused at once with that name, never mixed in;
- ``rows``: the output so far, byte for byte the beginning of FILE;
- ``journal``: a header line (the run's fingerprint: inputs, model, the options that
  change the rows), then one line per finished chunk: how many inputs it had and a key of
  their names, the length of ``rows`` after it, its counts. Every line ends in its
  CRC-32, so a line torn by a power cut is known and dropped with all after it.

Order of writes: a chunk's text is appended to ``rows``; every ``SYNC_SECONDS`` (at a
chunk boundary), on an interrupt and at the end, ``rows`` is fsynced first and only then
are the chunks' lines appended to ``journal`` and fsynced. So a line never describes rows
that are not on disk, and whatever ``rows`` holds past the last good line is cut off on
resume. At the end the footer is written and ``rows`` is renamed onto FILE (atomically,
as without a journal), then the folder is removed.

On resume the inputs are walked again (a directory's listing order is the filesystem's,
which an unchanged directory keeps): the first chunks must be the finished ones, each
with the same number of inputs and the same key, and are skipped without being read.
Files the walk meets after them are classified with the rest; a change among the finished
ones (a file added, removed or renamed there, or a listing in another order) is refused,
never mixed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO, TypeVar

from fashion_onnx.errors import FashionOnnxError, InvalidArgumentError
from fashion_onnx.infer.output_lock import LOCK, release, take_lock
from fashion_onnx.infer.sources import ChunkKey, key_of
from fashion_onnx.infer.work import Counts

SYNC_SECONDS = 1.0  # at most this long between fsyncs: what a power cut can cost
ROWS, JOURNAL = "rows", "journal"
VERSION = 2  # of the journal's format (2: a directory's chunks are cut per argument)

T = TypeVar("T")


class JournalRefused(InvalidArgumentError):
    """The journal cannot be used as asked: one left behind without ``--resume``, or one
    of another run (the message says what differs)."""


class JournalWriteError(FashionOnnxError, OSError):
    """Writing the journal failed (a full disk, an I/O error); what came before is kept."""


def partial_path(output: str) -> str:
    """The journal folder of ``output``."""
    return output + ".partial"


def fingerprint(
    inputs: list[str], model_bytes: bytes, options: dict[str, object], labels: str | None
) -> dict[str, object]:
    """What makes a run's rows: the inputs as given (and the folder they are relative to),
    the model's sha256, ``options`` (those that change the rows), ``labels``' file."""
    marks: dict[str, object] = {
        "inputs": list(inputs),
        "working folder": os.getcwd(),
        "model sha256": hashlib.sha256(model_bytes).hexdigest(),
        **options,
    }
    if labels is not None:
        with open(labels, "rb") as handle:
            sha = hashlib.file_digest(handle, "sha256").hexdigest()
        marks["--labels"] = f"{labels} (sha256 {sha[:12]})"
    return marks


def _line(value: object) -> bytes:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True)
    return f"{text} {zlib.crc32(text.encode()):08x}\n".encode()


def _parse(line: bytes) -> object | None:
    """A line's value, or None when it is torn or damaged."""
    if not line.endswith(b"\n"):
        return None
    text, _, crc = line[:-1].decode("ascii", "replace").rpartition(" ")
    if not text or crc != f"{zlib.crc32(text.encode()):08x}":
        return None
    value: object = json.loads(text)
    return value


def _fsync_folder(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Record:
    """One finished chunk."""

    inputs: int  # files and problems (array images) in it
    key: str  # key_of its names
    end: int  # the length of rows after its text
    rows: int  # rows it wrote
    counts: tuple[int, int, int, int, int]  # Counts: classified, failed, listed, judged, right

    def line(self) -> bytes:
        return _line([self.inputs, self.key, self.end, self.rows, *self.counts])

    @classmethod
    def of(cls, value: object) -> Record | None:
        if not (isinstance(value, list) and len(value) == 9):
            return None
        inputs, key, end, rows, *counts = value
        return cls(inputs, key, end, rows, tuple(counts))


def what_changed(before: dict[str, object], now: dict[str, object]) -> str | None:
    for name in sorted(before.keys() | now.keys()):
        if before.get(name) != now.get(name):
            was, _is = before.get(name), now.get(name)
            if name == "model sha256":
                return f"the model differs (sha256 {str(was)[:12]}... then, {str(_is)[:12]}... now)"
            return f"{name} was {was!r}, now {_is!r}"
    return None


class Journal:
    """A run's journal; make one with ``Journal.open``.

    The row writer writes into ``stream``; after each chunk's text, ``commit`` records it.
    ``publish`` turns the rows into the output at the end; ``save`` (on an interrupt or
    an error) makes sure everything finished is on disk.
    """

    resumable = True  # what an interrupted run leaves, --resume finishes

    def __init__(
        self, output: str, fingerprint: dict[str, object], records: list[Record], lock: int
    ):
        self.output = output
        self._lock = lock  # held while the run writes
        self.folder = partial_path(output)
        self.fingerprint = fingerprint
        self.finished = records  # of the earlier runs, skipped by ``track``
        rows_path = os.path.join(self.folder, ROWS)
        end = records[-1].end if records else 0
        with open(rows_path, "r+b" if os.path.exists(rows_path) else "w+b") as raw:
            raw.truncate(end)  # past the last good record: text of chunks never recorded
        # a file name that is not UTF-8 is written as its own bytes (surrogateescape)
        self.stream: TextIO = open(
            rows_path, "a", encoding="utf-8", errors="surrogateescape", newline=""
        )
        self._journal_fd = os.open(os.path.join(self.folder, JOURNAL), os.O_WRONLY | os.O_APPEND)
        self._pending: list[Record] = []  # committed, not yet synced
        self._synced = time.monotonic()
        self.saved = Counts()  # of the records on disk
        for record in records:
            self.saved.add(Counts(*record.counts))
        self.resumed = bool(records)
        self.rows_before = sum(r.rows for r in records) if records else None

    # -- opening ---------------------------------------------------------------------

    @classmethod
    def open(cls, output: str, fingerprint: dict[str, object], *, resume: bool) -> Journal:
        """The journal of a run writing ``output``: a new one, or with ``resume`` the one
        an earlier run left (a new one when there is none).

        Raises:
            JournalRefused: a journal is there and ``resume`` is not set, or it is of a run
                with other inputs, model or options.
            JournalWriteError: it cannot be written.
        """
        folder = partial_path(output)
        lock = -1
        try:
            if os.path.lexists(folder):
                ours = (os.path.join(folder, n) for n in (JOURNAL, LOCK))
                if not os.path.isdir(folder) or not any(map(os.path.lexists, ours)):
                    raise JournalRefused(
                        f"{folder} is in the way (it is not a journal of fashion-infer): move it"
                    )
            else:
                os.makedirs(folder)
            lock = take_lock(output, folder)
            if os.path.lexists(os.path.join(folder, JOURNAL)):
                records = cls._read(folder, fingerprint, resume)
                if records is not None:
                    return cls(output, fingerprint, records, lock)
                # a journal whose header never reached the disk holds nothing: start anew
            cls._create(folder, fingerprint)
            return cls(output, fingerprint, [], lock)
        except OSError as exc:
            release(lock)
            raise JournalWriteError(f"{folder}: {exc.strerror or exc}") from None
        except BaseException:
            release(lock)
            raise

    @classmethod
    def check(cls, output: str, fingerprint: dict[str, object], *, resume: bool) -> None:
        """Refuse now what ``open`` would refuse, writing nothing: a run on a cluster says
        so before it waits for the connection.

        Raises:
            JournalRefused, JournalWriteError: as ``open``.
        """
        folder = partial_path(output)
        try:
            if os.path.lexists(os.path.join(folder, LOCK)):
                release(take_lock(output, folder))
            if os.path.lexists(folder) and not os.path.lexists(os.path.join(folder, LOCK)):
                cls._read(folder, fingerprint, resume, repair=False)  # in the way, or old
            elif os.path.lexists(os.path.join(folder, JOURNAL)):
                cls._read(folder, fingerprint, resume, repair=False)
        except OSError as exc:
            raise JournalWriteError(f"{folder}: {exc.strerror or exc}") from None

    @staticmethod
    def _create(folder: str, fingerprint: dict[str, object]) -> None:
        os.makedirs(folder, exist_ok=True)
        journal = os.path.join(folder, JOURNAL)
        fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.write(fd, _line({"version": VERSION, **fingerprint}))
            os.fsync(fd)
        finally:
            os.close(fd)
        open(os.path.join(folder, ROWS), "wb").close()
        _fsync_folder(folder)
        _fsync_folder(os.path.dirname(os.path.abspath(folder)))

    @staticmethod
    def _read(
        folder: str, fingerprint: dict[str, object], resume: bool, *, repair: bool = True
    ) -> list[Record] | None:
        """The good records of the journal in ``folder`` (with ``repair``, its torn tail
        cut off the file), or None when it never got its header."""
        journal = os.path.join(folder, JOURNAL)
        if not os.path.isdir(folder) or not os.path.isfile(journal):
            raise JournalRefused(
                f"{folder} is in the way (it is not a journal of fashion-infer): move it"
            )
        with open(journal, "rb") as handle:
            lines = handle.readlines()
        header = _parse(lines[0]) if lines else None
        records: list[Record] = []
        good = len(lines[0]) if header is not None else 0
        for line in lines[1:] if header is not None else ():
            value = _parse(line)
            record = Record.of(value) if value is not None else None
            if record is None:
                break  # torn by a crash: it and anything after it were never finished
            records.append(record)
            good += len(line)
        rows = os.path.join(folder, ROWS)
        size = os.path.getsize(rows) if os.path.exists(rows) else 0
        while records and records[-1].end > size:  # rows lost after the line was written
            good -= len(records.pop().line())
        saved = sum(r.counts[0] for r in records)
        if not resume:
            raise JournalRefused(
                f"{folder} holds an unfinished run ({saved:,} image(s) saved): run the same "
                f"command with --resume to finish it, or delete {folder} to start over"
            )
        if header is None:
            return None
        assert isinstance(header, dict)
        before = {k: v for k, v in header.items() if k != "version"}
        if header.get("version") != VERSION:
            raise JournalRefused(
                f"--resume: {folder} was written by another version of fashion-infer; "
                f"delete {folder} to start over"
            )
        changed = what_changed(before, fingerprint)
        if changed is not None:
            raise JournalRefused(
                f"--resume: {folder} is of another run: {changed}; run the command that "
                f"started it, or delete {folder} to start over"
            )
        if repair:
            with open(journal, "r+b") as handle:
                handle.truncate(good)
        return records

    # -- writing ---------------------------------------------------------------------

    def track(self, items: Iterable[T], names: Callable[[T], list[str]]) -> Iterator[T]:
        """``items`` (chunks, in order) less the finished ones, which must be the first,
        each as it was (``names`` gives what its key is made of). The rest pass as they
        are: their keys are made where they are worked on, and come back to ``commit``.

        Raises:
            JournalRefused: the first items are not the finished ones (the inputs changed
                in the part already done).
        """
        stream = iter(items)
        for index, record in enumerate(self.finished):
            item = next(stream, None)
            got = names(item) if item is not None else []
            if item is None or len(got) != record.inputs or key_of(got) != record.key:
                near = f" (near {got[0]})" if got else ""
                raise JournalRefused(
                    f"--resume: the inputs changed in the part already done: chunk "
                    f"{index + 1} of {len(self.finished)} differs{near}; files there were "
                    f"added, removed or renamed. Restore them, or delete {self.folder} "
                    "to start over"
                )
        yield from stream

    def skip(self, names: list[str]) -> int:
        """How many of ``names`` (every input, in order) the finished records cover,
        checking each record's part (for an engine that takes the rest as a list).

        Raises:
            JournalRefused: as ``track``.
        """
        start = 0
        for index, record in enumerate(self.finished):
            part = names[start : start + record.inputs]
            if len(part) != record.inputs or key_of(part) != record.key:
                near = f" (near {part[0]})" if part else ""
                raise JournalRefused(
                    f"--resume: the inputs changed in the part already done: part "
                    f"{index + 1} of {len(self.finished)} differs{near}; files there were "
                    f"added, removed or renamed. Restore them, or delete {self.folder} "
                    "to start over"
                )
            start += record.inputs
        return start

    def commit(self, counts: Counts, key: ChunkKey | None) -> None:
        """Record the next chunk, whose text (a row per image classified) the writer has
        just written: its counts and ``key`` (``sources.chunk_key``); sync when the last
        sync is ``SYNC_SECONDS`` old.

        Raises:
            JournalWriteError: the disk refused (full, I/O error).
        """
        try:
            self.stream.flush()
            end = os.lseek(self.stream.fileno(), 0, os.SEEK_CUR)
        except OSError as exc:
            raise self.failed(exc) from None
        assert key is not None, "a journaled run's chunks are keyed"
        c = (counts.classified, counts.failed, counts.listed, counts.judged, counts.right)
        inputs, digest = key
        self._pending.append(Record(inputs, digest, end, counts.classified, c))
        if time.monotonic() - self._synced >= SYNC_SECONDS:
            self.sync()

    def sync(self) -> None:
        """Make the rows written so far, then their records, durable.

        Raises:
            JournalWriteError: the disk refused (full, I/O error); the journal still ends
                at its last good record.
        """
        try:
            self.stream.flush()
            os.fsync(self.stream.fileno())
            if self._pending:
                data = b"".join(r.line() for r in self._pending)
                while data:
                    data = data[os.write(self._journal_fd, data) :]
                os.fsync(self._journal_fd)
        except OSError as exc:
            raise self.failed(exc) from None
        for record in self._pending:
            self.saved.add(Counts(*record.counts))
        self._pending.clear()
        self._synced = time.monotonic()

    def failed(self, exc: OSError) -> JournalWriteError:
        """The error to raise when writing ``stream`` or the journal met ``exc``."""
        self._pending.clear()  # their lines may be torn: the resume drops what is
        return JournalWriteError(
            f"writing {self.folder}: {exc.strerror or exc}; {self.saved.classified:,} "
            "image(s) are saved there: make room and run the same command with --resume"
        )

    def save(self) -> int:
        """On an interrupt: sync what is finished (if the disk allows); return the images
        saved in the journal."""
        with contextlib.suppress(JournalWriteError):
            self.sync()
        return self.saved.classified

    def publish(self) -> None:
        """After the writer's footer: the rows become the output (atomically), and the
        folder goes.

        Raises:
            JournalWriteError: the disk refused; the journal is kept.
        """
        self.sync()
        try:
            self.stream.close()
            os.replace(os.path.join(self.folder, ROWS), self.output)
            _fsync_folder(os.path.dirname(os.path.abspath(self.output)))
            os.close(self._journal_fd)
            self._journal_fd = -1
            os.unlink(os.path.join(self.folder, JOURNAL))
            os.unlink(os.path.join(self.folder, LOCK))  # still held: no run can take it now
            os.rmdir(self.folder)
        except OSError as exc:
            raise self.failed(exc) from None

    def close(self) -> None:
        """Close the files (after ``publish``, or leaving the journal as it is)."""
        with contextlib.suppress(OSError):
            self.stream.close()
        if self._journal_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._journal_fd)
            self._journal_fd = -1
        release(self._lock)
        self._lock = -1
