"""The lock of an output being written: ``FILE.partial/lock``, held with ``fcntl.flock``
by the run writing FILE for as long as it runs, and naming that run (pid, start, command
line), so that a second run on the same FILE is refused at once with that name."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time

from fashion_onnx.errors import InvalidArgumentError

LOCK = "lock"


class OutputBusy(InvalidArgumentError):
    """Another run is writing the same output (it holds the lock)."""


# The locks this process holds. A flock belongs to the open file, which forked children
# (the workers, the directory walker) share: each closes its copies at once, so that the
# lock ends with this process, never with a child that outlives it by a moment.
_HELD: set[int] = set()


def _close_in_child() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


def take_lock(output: str, folder: str) -> int:
    """Hold ``folder``'s lock (the file descriptor) and write this run's name in it.

    Raises:
        OutputBusy: another run holds it (its name, as it wrote it, in the message).
    """
    fd = os.open(os.path.join(folder, LOCK), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "a run"
        os.close(fd)
        raise OutputBusy(
            f"{output} is being written by another run ({holder}): wait for it to end, or "
            "stop it (its journal then lets --resume finish it)"
        ) from None
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, started {started}: {command}\n".encode(), 0)
    _HELD.add(fd)
    return fd


def release(fd: int) -> None:
    if fd >= 0:
        _HELD.discard(fd)
        with contextlib.suppress(OSError):
            os.close(fd)  # closing the descriptor releases the flock
