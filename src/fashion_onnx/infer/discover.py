"""Expand files, directories (recursive) and globs into image paths, lazily.

Nothing is listed ahead: paths are yielded as they are found, so memory stays flat
however many files there are. The order is the command line's; inside a directory it
is the order the filesystem returns (``os.scandir``, not sorted), depth-first.
"""

from __future__ import annotations

import glob
import itertools
import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from fashion_onnx.infer.images import IMAGE_SUFFIXES
from fashion_onnx.infer.pool import die_with_parent, start

GLOB_CHARS = frozenset("*?[")

# What discovery yields: (path, None) for a file to classify, (path, reason) for a problem.
Found = tuple[str, str | None]


def as_inputs(
    inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
) -> Iterable[str | os.PathLike[str]]:
    """``inputs``, with one path (a str or PathLike, iterable or not) as a list of one."""
    return [inputs] if isinstance(inputs, str | os.PathLike) else inputs


def is_image_name(name: str) -> bool:
    """Whether ``name`` ends with an image suffix (any case). Called once per file found,
    so it is plain string work (os.path.splitext costs twice as much)."""
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_SUFFIXES


# What the walk yields, in order: (paths found, None), or ([], a problem).
Run = tuple[list[str], tuple[str, str] | None]
BATCH = 4096  # directory entries taken at a time: one list comprehension each
_SUFFIXES = tuple(IMAGE_SUFFIXES)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _walk(top: str, seen_dirs: set[tuple[int, int]]) -> Iterator[Run]:
    """Depth-first, following symlinks but never into a directory twice (no loops).

    Entries are taken a batch at a time and filtered by comprehensions: the common
    directory of files costs well under a microsecond an entry here.
    """
    try:
        st = os.stat(top)
    except OSError as exc:
        yield [], (top, exc.strerror or "cannot stat")
        return
    key = (st.st_dev, st.st_ino)
    if key in seen_dirs:
        yield [], (top, "symlink loop: directory already visited, skipped")
        return
    seen_dirs.add(key)
    try:
        entries = os.scandir(top)
    except OSError as exc:
        yield [], (top, _listing_problem(exc))
        return
    with entries:
        while True:
            batch: list[os.DirEntry[str]] = []
            failed: OSError | None = None
            try:  # listing can fail midway (/proc/1/map_files does, even for root)
                for entry in entries:
                    batch.append(entry)
                    if len(batch) == BATCH:
                        break
            except OSError as exc:  # the entries given so far stand
                failed = exc
            try:
                dirs = [entry.is_dir() for entry in batch]
            except OSError:
                dirs = [_is_dir(entry) for entry in batch]
            if not any(dirs):
                found = [
                    e.path
                    for e in batch
                    if e.name.lower().endswith(_SUFFIXES) and e.name.rfind(".") > 0
                ]
                if found:
                    yield found, None  # broken links included: they get a reason later
            else:
                for entry, is_dir in zip(batch, dirs, strict=True):
                    if is_dir:
                        yield from _walk(entry.path, seen_dirs)
                    elif is_image_name(entry.name):
                        yield [entry.path], None
            if failed is not None:
                yield [], (top, _listing_problem(failed))
                return
            if len(batch) < BATCH:
                return


def _listing_problem(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied (directory)"
    return exc.strerror or "cannot list directory"


def find_image_runs(
    inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
) -> Iterator[Run]:
    """Every image path under ``inputs`` and every problem met on the way, in order, as
    runs: (paths, None) or ([], (path, problem)). See ``find_images`` for the rules. Each
    argument is walked on its own, as given: a directory given twice (``a a``) is walked
    twice, like ``cat a a`` reads its file twice; only a directory met again within one
    argument's walk is a symlink loop."""
    for item in as_inputs(inputs):
        arg = os.fspath(item)
        if os.path.isdir(arg):
            yield from _walk(arg, set())
        elif os.path.lexists(arg):
            yield [arg], None
        elif GLOB_CHARS & set(arg):
            matches = glob.iglob(arg, recursive=True)  # a matching directory is reported
            batch = list(itertools.islice(matches, BATCH))  # when it is read
            if not batch:
                yield [], (arg, "no file matches this pattern")
            while batch:
                yield batch, None
                batch = list(itertools.islice(matches, BATCH))
        else:
            yield [], (arg, "no such file or directory")


# What the walker sends for each chunk: ("\0"-joined paths, how many, the problems met
# before them as (path, reason) pairs).
WalkedChunk = tuple[str, int, list[tuple[str, str]]]


def _walk_on_request(pipe: Connection, parents_end: Connection, parent: int) -> None:
    """The walker process: for each (argument, chunk size) received, send its files in
    chunks of that size ("\\0"-joined: one string to pickle, passed on as it is) with the
    problems met before them, in order, then None. ``parents_end`` (inherited) is
    closed at once: were it
    held here, a parent killed midway would leave this process blocked in ``send``."""
    parents_end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    die_with_parent(parent)
    try:
        _walk_requests(pipe)
    except (EOFError, ConnectionError):  # the parent stopped listening (done, or died): end
        pass


def _walk_requests(pipe: Connection) -> None:
    while (request := pipe.recv()) is not None:
        arg, size = request
        pending: list[str] = []
        problems: list[tuple[str, str]] = []
        for paths, problem in find_image_runs([arg]):
            if problem is not None:
                problems.append(problem)
            pending.extend(paths)
            while len(pending) >= size:
                pipe.send(("\0".join(pending[:size]), size, problems))
                pending, problems = pending[size:], []
        if pending or problems:
            pipe.send(("\0".join(pending), len(pending), problems))
        pipe.send(None)


class Walker:
    """Directories and globs walked by a child process, one argument at a time, and sent
    here in chunks of joined paths: the main process of ``fashion-infer`` touches no path
    one by one, so it stays off the critical path however many cores its workers have.
    The child starts with the first directory or glob. Use as a context manager."""

    def __init__(self) -> None:
        self._pipe: Connection | None = None
        self._process: BaseProcess | None = None

    def __enter__(self) -> Walker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._process is None or self._pipe is None:
            return
        self._pipe.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._process = self._pipe = None

    @staticmethod
    def takes(arg: str) -> bool:
        """Whether ``arg`` is walked (a directory or a glob) rather than one file."""
        return bool(GLOB_CHARS & set(arg)) or os.path.isdir(arg)

    def chunks(self, arg: str, size: int) -> Iterator[WalkedChunk]:
        """The files under ``arg`` (a directory or glob, see ``find_image_runs``) in
        chunks of ``size``, in order, each with the problems met before it.

        Raises:
            OSError: the walker process died (it is not expected to).
        """
        if self._pipe is None:
            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else None)
            self._pipe, child = ctx.Pipe()
            self._process = ctx.Process(
                target=_walk_on_request, args=(child, self._pipe, os.getpid()), daemon=True
            )
            start(self._process)  # the garbage collector frozen: see pool.start
            child.close()
        pipe = self._pipe
        pipe.send((arg, size))
        finished = False
        try:
            while (message := pipe.recv()) is not None:
                yield message
            finished = True
        except EOFError:
            raise OSError("the directory walker process died") from None
        finally:
            if not finished:  # abandoned midway: the pipe is out of step, start anew
                self.close()


def find_images(
    inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
) -> Iterator[Found]:
    """Yield every image path under ``inputs``, and every problem met on the way.

    Files are taken as given (whatever their suffix); directories are walked for image
    suffixes (any case); other arguments are globs (``**`` recurses). One path (a str or
    PathLike) is one input, not a sequence of characters. Each directory is walked once,
    however many arguments reach it. A directory that cannot be listed (or stops listing
    midway) is a problem, like a missing file.
    """
    for paths, problem in find_image_runs(inputs):
        if problem is not None:
            yield problem
        for path in paths:
            yield path, None
