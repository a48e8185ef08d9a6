"""Expand the command line's files, directories (recursive) and globs into image paths."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

from fashion_onnx.infer.images import IMAGE_SUFFIXES

GLOB_CHARS = frozenset("*?[")


@dataclass
class Found:
    paths: list[str] = field(default_factory=list)  # in a stable order, each once
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _walk(top: str, found: Found, seen_dirs: set[tuple[int, int]]) -> None:
    """Depth-first, sorted, following symlinks but never a directory twice (no loops)."""
    try:
        st = os.stat(top)
    except OSError as exc:
        found.problems.append((top, exc.strerror or "cannot stat"))
        return
    key = (st.st_dev, st.st_ino)
    if key in seen_dirs:
        found.problems.append((top, "symlink loop: directory already visited, skipped"))
        return
    seen_dirs.add(key)
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except PermissionError:
        found.problems.append((top, "permission denied (directory)"))
        return
    except OSError as exc:
        found.problems.append((top, exc.strerror or "cannot list directory"))
        return
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:
            is_dir = False
        if is_dir:
            _walk(entry.path, found, seen_dirs)
        elif _is_image_name(entry.name):
            found.paths.append(entry.path)  # broken links included: they get a reason later


def find_images(inputs: list[str]) -> Found:
    """Files are taken as given (whatever their suffix); directories are walked for
    image suffixes (any case); other arguments are globs (``**`` recurses)."""
    found = Found()
    seen_dirs: set[tuple[int, int]] = set()
    for arg in inputs:
        if os.path.isdir(arg):
            _walk(arg, found, seen_dirs)
        elif os.path.lexists(arg):
            found.paths.append(arg)
        elif GLOB_CHARS & set(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                found.problems.append((arg, "no file matches this pattern"))
            found.paths.extend(matches)  # a matching directory is reported when read
        else:
            found.problems.append((arg, "no such file or directory"))
    unique = dict.fromkeys(found.paths)  # keep order, drop repeats
    found.paths = list(unique)
    return found
