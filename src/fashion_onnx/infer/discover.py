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
    except PermissionError:
        yield top, "permission denied (directory)"
        return
    except OSError as exc:
        yield top, exc.strerror or "cannot list directory"
        return
    with entries:
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                yield from _walk(entry.path, seen_dirs)
            elif is_image_name(entry.name):
                yield entry.path, None  # broken links included: they get a reason later


def find_images(inputs: Iterable[str | os.PathLike[str]]) -> Iterator[Found]:
    """Yield every image path under ``inputs``, and every problem met on the way.

    Files are taken as given (whatever their suffix); directories are walked for image
    suffixes (any case); other arguments are globs (``**`` recurses). Each directory is
    walked once, however many arguments reach it.
    """
    seen_dirs: set[tuple[int, int]] = set()
    for item in inputs:
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
