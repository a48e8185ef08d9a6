"""Expand files, directories (recursive) and globs into image paths, lazily.

Nothing is listed ahead: paths are yielded as they are found, so memory stays flat
however many files there are. The order is the command line's; inside a directory it
is the order the filesystem returns (``os.scandir``, not sorted), depth-first.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator

from fashion_onnx.infer.images import IMAGE_SUFFIXES

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


def _walk(top: str, seen_dirs: set[tuple[int, int]]) -> Iterator[Found]:
    """Depth-first, following symlinks but never into a directory twice (no loops)."""
    try:
        st = os.stat(top)
    except OSError as exc:
        yield top, exc.strerror or "cannot stat"
        return
    key = (st.st_dev, st.st_ino)
    if key in seen_dirs:
        yield top, "symlink loop: directory already visited, skipped"
        return
    seen_dirs.add(key)
    try:
        entries = os.scandir(top)
    except OSError as exc:
        yield top, _listing_problem(exc)
        return
    with entries:
        while True:  # listing can fail midway (/proc/1/map_files does, even for root)
            try:
                entry = next(entries)
            except StopIteration:
                return
            except OSError as exc:  # the entries given so far stand
                yield top, _listing_problem(exc)
                return
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                yield from _walk(entry.path, seen_dirs)
            elif is_image_name(entry.name):
                yield entry.path, None  # broken links included: they get a reason later


def _listing_problem(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied (directory)"
    return exc.strerror or "cannot list directory"


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
    seen_dirs: set[tuple[int, int]] = set()
    for item in as_inputs(inputs):
        arg = os.fspath(item)
        if os.path.isdir(arg):
            yield from _walk(arg, seen_dirs)
        elif os.path.lexists(arg):
            yield arg, None
        elif GLOB_CHARS & set(arg):
            matched = False
            for match in glob.iglob(arg, recursive=True):
                matched = True
                yield match, None  # a matching directory is reported when read
            if not matched:
                yield arg, "no file matches this pattern"
        else:
            yield arg, "no such file or directory"
