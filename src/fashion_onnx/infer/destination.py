"""Where a run's rows go, and what happens to them on the way: the one place that decides
how an output is written.

- no ``-o``: a stream (stdout), written as rows come; while a library that prints (Ray)
  runs, file descriptor 1 points at stderr and the rows go to a private copy of it;
- ``-o`` a FIFO, a character device (``/dev/null``, a terminal) or ``/dev/stdout``: a
  stream too, opened where it is, never replaced;
- ``-o FILE`` with local inputs: the resume journal (``journal.Journal``), whose rows are
  renamed onto FILE at the end; through a symlink, onto its target (the link stays);
- ``-o FILE`` with URI inputs (Ray lists them, so no part of the run can be skipped on a
  resume): one temporary file beside FILE, renamed onto it at the end.

Anything else at the path (a socket, a block device) is refused, and so is a FILE whose
folder does not exist. File names that are not UTF-8 are written as their own bytes.

Every destination is used the same way: write into ``stream``, ``commit`` each finished
chunk, ``publish`` at the end; ``save`` on an interrupt, ``close`` always.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, TextIO, TypeVar

from fashion_onnx.errors import FashionOnnxError, InvalidArgumentError

if TYPE_CHECKING:
    from fashion_onnx.infer.sources import ChunkKey
    from fashion_onnx.infer.work import Counts

T = TypeVar("T")


class OutputWriteError(FashionOnnxError, OSError):
    """Writing the output failed (a full disk, an I/O error)."""


class Destination(Protocol):
    stream: TextIO
    rows_before: int | None  # rows an earlier run left (a resumed journal), else None
    saved: Counts  # what earlier runs finished (a resumed journal)
    resumable: bool  # whether an interrupted run can be finished with --resume

    def track(self, items: Iterable[T], names: Callable[[T], list[str]]) -> Iterator[T]: ...

    def skip(self, names: list[str]) -> int: ...

    def commit(self, counts: Counts, key: ChunkKey | None) -> None: ...

    def failed(self, exc: OSError) -> FashionOnnxError: ...

    def save(self) -> int: ...

    def publish(self) -> None: ...

    def close(self) -> None: ...


class _Plain:
    """What a destination without a journal does at chunk boundaries: nothing."""

    rows_before: int | None = None
    resumable = False

    def __init__(self) -> None:
        from fashion_onnx.infer.work import Counts

        self.saved = Counts()

    def track(self, items: Iterable[T], names: Callable[[T], list[str]]) -> Iterator[T]:
        return iter(items)

    def skip(self, names: list[str]) -> int:
        return 0

    def commit(self, counts: Counts, key: ChunkKey | None) -> None:
        pass

    def save(self) -> int:
        return 0


class StreamDestination(_Plain):
    """Rows to an open stream (stdout; or a FIFO or device, opened and closed here);
    ``guard``: see the module's docstring."""

    def __init__(self, stream: TextIO, *, guard: bool = False, owned: bool = False) -> None:
        super().__init__()
        self._stack = contextlib.ExitStack()
        if owned:
            self._stack.enter_context(stream)
        self.stream = self._stack.enter_context(_guarded(stream)) if guard else stream

    def failed(self, exc: OSError) -> FashionOnnxError:
        name = getattr(self.stream, "name", None)
        where = name if isinstance(name, str) and not name.startswith("<") else "stdout"
        return OutputWriteError(f"writing the rows to {where}: {exc.strerror or exc}")

    def publish(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        # a stream that failed (a full device) fails again as it closes: said once already
        with contextlib.suppress(OSError):
            self._stack.close()


class OneGoFile(_Plain):
    """Rows to a temporary file beside ``output``, renamed onto it when the run ends."""

    def __init__(self, output: str) -> None:
        super().__init__()
        from fashion_onnx.fileio import atomic_path

        self.output = output
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(output))
        self.stream: TextIO = self._stack.enter_context(
            open(self._tmp, "w", encoding="utf-8", errors="surrogateescape", newline="")
        )

    def failed(self, exc: OSError) -> FashionOnnxError:
        return OutputWriteError(f"writing {self.output}: {exc.strerror or exc}")

    def publish(self) -> None:
        self.stream.flush()
        self.stream.close()
        self._stack.close()  # the rename onto the output

    def close(self) -> None:
        if not self.stream.closed:  # not published: nothing appears
            self._stack.__exit__(InvalidArgumentError, InvalidArgumentError("unpublished"), None)


@contextlib.contextmanager
def _guarded(stream: TextIO) -> Iterator[TextIO]:
    """``stream`` if it is not file descriptor 1; else a private copy of fd 1, with fd 1
    itself pointed at stderr while inside, so that nothing a library prints there can mix
    into the rows."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1  # not a real file (a test runner captures it): nothing else can write there
    if fd != 1:
        yield stream
        return
    stream.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(saved), "w", encoding="utf-8", newline="") as rows:
            yield rows
    finally:
        os.dup2(saved, 1)
        os.close(saved)


# Paths that name a process's own streams: written as they are, whatever they point to.
STREAM_PATHS = ("/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/")


def where_to_write(output: str, *, resume: bool) -> tuple[str, str]:
    """("file", the path to write, a symlink's target) or ("stream", ``output``).

    Raises:
        InvalidArgumentError: neither a regular file (or none yet, in a folder that
            exists), nor a FIFO or a character device; or a stream with ``resume``.
    """
    if output.startswith(STREAM_PATHS):
        kind: str | None = "stream"
    else:
        try:
            mode = os.stat(output).st_mode  # through symlinks
        except FileNotFoundError:
            mode = None
        except OSError as exc:
            raise InvalidArgumentError(f"--output {output}: {exc.strerror or exc}") from None
        if mode is None or stat.S_ISREG(mode):
            kind = "file"
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            kind = "stream"
        else:
            raise InvalidArgumentError(
                f"--output {output} is not a regular file, a FIFO or a character device"
            )
    if kind == "stream":
        if resume:
            raise InvalidArgumentError(
                f"--resume needs -o to be a regular file; {output} is a stream (a FIFO or a "
                "device), written as the rows come"
            )
        return "stream", output
    # through a symlink, its target is written (the link stays); else the path as given
    target = os.path.realpath(output) if os.path.islink(output) else output
    folder = os.path.dirname(target) or "."
    if not os.path.isdir(folder):
        raise InvalidArgumentError(f"--output {output}: the folder {folder} does not exist")
    return "file", target


def open_destination(
    output: str | None,
    fingerprint: Callable[[], dict[str, object]],
    *,
    resume: bool,
    uris: bool,
    guard_stdout: bool,
    stream: TextIO | None = None,
) -> Destination:
    """The destination of a run's rows: ``stream`` (default stdout) when there is no
    ``output``, a one-go file for URI inputs, else the resume journal (new, or with
    ``resume`` the one an earlier run left).

    Raises:
        JournalRefused: a journal is in the way (``journal.Journal.open``).
        InvalidArgumentError: ``resume`` with URI inputs.
    """
    if output is None:
        return StreamDestination(stream or sys.stdout, guard=guard_stdout)
    kind, path = where_to_write(output, resume=resume)
    if kind == "stream":
        # appended: /dev/stdout may be a file the shell opened (>> log), never truncated here
        opened = open(path, "a", encoding="utf-8", errors="surrogateescape", newline="")
        return StreamDestination(opened, owned=True)
    if uris:
        if resume:
            raise InvalidArgumentError("--resume takes local paths on --engine ray, not URIs")
        return OneGoFile(path)
    from fashion_onnx.infer.journal import Journal

    return Journal.open(path, fingerprint(), resume=resume)


def check_destination(
    output: str | None, fingerprint: Callable[[], dict[str, object]], *, resume: bool, uris: bool
) -> None:
    """Refuse now what ``open_destination`` would refuse, writing nothing (a run on a
    cluster says so before it waits for the connection)."""
    if output is None:
        return
    kind, path = where_to_write(output, resume=resume)
    if kind == "stream":
        return
    if uris:
        if resume:
            raise InvalidArgumentError("--resume takes local paths on --engine ray, not URIs")
        return
    from fashion_onnx.infer.journal import Journal

    Journal.check(path, fingerprint(), resume=resume)
