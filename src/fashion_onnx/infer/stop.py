"""Stopping a run at a chunk boundary: SIGINT and SIGTERM set a flag the run reads
between chunks, so that what it says it wrote is what it wrote."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType


class Stop:
    """While inside: SIGINT and SIGTERM ask the run to stop at the next chunk boundary
    (``signal`` names the one received) instead of ending it at once; a second SIGINT
    raises KeyboardInterrupt there and then."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._before: dict[int, object] = {}
        self._pid = os.getpid()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:  # a forked worker inherited this: die as it would
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
            return
        if self.signal is not None and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = number

    def __enter__(self) -> Stop:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach the main thread only: nothing to catch here
        for number in (signal.SIGINT, signal.SIGTERM):
            self._before[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._before.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        self._before.clear()
