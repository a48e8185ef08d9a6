"""Atomic file writes. Torch-free.

Every file this package writes goes through ``atomic_path``: the content lands in a
temporary file in the destination's directory and is renamed into place only when it
is complete, so Ctrl-C or a crash never leaves a partial file where the output should be.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path


def _temporary_beside(dest: Path, suffix: str) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix + ".tmp", dir=dest.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    return Path(name)


@contextlib.contextmanager
def atomic_paths(dests: Sequence[str | os.PathLike[str]], suffix: str = "") -> Iterator[list[Path]]:
    """Yield temporary paths beside each of ``dests``; publish them all if the block succeeds.

    The files are renamed into place together at the end, so a failure anywhere in the
    block leaves none of them (and no temporary file). Should a rename itself fail, the
    files already renamed by this call are removed again.

    Args:
        dests: the final paths. Their parent directories are created if missing.
        suffix: ends each temporary file's name (some writers pick a format by it).

    Raises:
        Whatever the block raises, or the OSError of a failed rename.
    """
    finals = [Path(d) for d in dests]
    temps: list[Path] = []
    try:
        for dest in finals:
            temps.append(_temporary_beside(dest, suffix))
        yield list(temps)
        published: list[Path] = []
        try:
            for tmp, dest in zip(temps, finals, strict=True):
                os.replace(tmp, dest)
                published.append(dest)
        except BaseException:
            for dest in published:
                dest.unlink(missing_ok=True)
            raise
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` if the block succeeds.

    Args:
        dest: the final path. Its parent directory is created if missing.
        suffix: ends the temporary file's name (some writers pick a format by it, e.g. ``.png``).

    Raises:
        Whatever the block raises; the temporary file is removed first.
    """
    with atomic_paths([dest], suffix) as (tmp,):
        yield tmp


def write_bytes_atomic(dest: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(dest: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``dest`` atomically."""
    write_bytes_atomic(dest, text.encode("utf-8"))
