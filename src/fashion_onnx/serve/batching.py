"""Dynamic batching: requests that arrive together share one model run.

Each request puts its rows on a queue and waits. One collector gathers queued requests
into a batch of at most ``max_batch`` rows, waiting at most ``max_delay_s`` after the first
for more, and hands the batch to the runner on a worker thread, so the event loop keeps
accepting and parsing requests while the model computes. While ``runners`` batches are
running, the next batch keeps growing: under load, batches grow by themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fashion_onnx.errors import InvalidArgumentError

Runner = Callable[[np.ndarray], dict[str, np.ndarray]]  # rows -> outputs, row-aligned


@dataclass(frozen=True)
class Batching:
    """How requests are gathered into runner calls (see ``Batcher``)."""

    max_batch: int = 64
    max_delay_ms: float = 1.0
    runners: int = 1  # batches computed at once (fashion-serve --engines)


class Batcher:
    """Gather ``submit`` calls into batches, each one call of ``runner``.

    Args:
        runner: runs one batch (on a worker thread): (n, ...) rows -> {output: (n, ...)}.
        max_batch: the most rows in one runner call (a larger request runs alone).
        max_delay_s: how long the first queued request may wait for others.
        runners: batches running at once (runner threads).
        on_batch: called with each batch's size (for the metrics).

    Raises:
        InvalidArgumentError: a setting out of range.
    """

    def __init__(
        self,
        runner: Runner,
        *,
        max_batch: int,
        max_delay_s: float,
        runners: int = 1,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1 or runners < 1 or not 0 <= max_delay_s <= 1:
            raise InvalidArgumentError(
                "max_batch and runners must be >= 1, max_delay_s in 0..1 s; got "
                f"{max_batch}, {runners}, {max_delay_s}"
            )
        self.runner = runner
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.on_batch = on_batch
        self._executor = ThreadPoolExecutor(runners, thread_name_prefix="fashion-runner")
        self._free = asyncio.Semaphore(runners)
        self._queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future[dict[str, np.ndarray]]]]
        self._queue = asyncio.Queue()
        self._collector: asyncio.Task[None] | None = None

    async def submit(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Run ``rows`` in some batch; return their outputs.

        Raises:
            Whatever the runner raised for the batch these rows were in.
        """
        if self._collector is None or self._collector.done():
            self._collector = asyncio.get_running_loop().create_task(self._collect())
        future: asyncio.Future[dict[str, np.ndarray]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((rows, future))
        return await future

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        carry: tuple[np.ndarray, asyncio.Future[dict[str, np.ndarray]]] | None = None
        while True:
            first = carry or await self._queue.get()
            carry = None
            batch, size = [first], len(first[0])
            deadline = loop.time() + self.max_delay_s
            await self._free.acquire()  # while the runners are busy, the queue fills
            while size < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), left)
                    except TimeoutError:
                        break
                if size + len(item[0]) > self.max_batch:
                    carry = item  # starts the next batch
                    break
                batch.append(item)
                size += len(item[0])
            loop.create_task(self._run(batch))

    async def _run(
        self, batch: list[tuple[np.ndarray, asyncio.Future[dict[str, np.ndarray]]]]
    ) -> None:
        try:
            rows = batch[0][0] if len(batch) == 1 else np.concatenate([r for r, _ in batch])
            if self.on_batch is not None:
                self.on_batch(len(rows))
            try:
                outputs = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self.runner, rows
                )
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            start = 0
            for part, future in batch:
                end = start + len(part)
                if not future.done():  # a client that went away cancelled its future
                    future.set_result({k: v[start:end] for k, v in outputs.items()})
                start = end
        finally:
            self._free.release()

    def close(self) -> None:
        """Stop the collector and the runner threads (after the running batches)."""
        if self._collector is not None:
            self._collector.cancel()
        self._executor.shutdown(wait=True)
