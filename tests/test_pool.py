"""The ordered worker pool: results in task order, and its workers end as soon as it is
closed (a forked worker holds copies of the other pipes, so it must be told to stop)."""

from __future__ import annotations

import time

from fashion_onnx.infer.pool import OrderedPool


def square(x: int) -> int:
    return x * x


def test_results_come_back_in_task_order() -> None:
    with OrderedPool(3, square) as pool:
        assert list(pool.map(range(50), per_worker=2)) == [x * x for x in range(50)]


def test_closing_ends_the_workers_at_once_even_idle_ones() -> None:
    started = time.perf_counter()
    pool: OrderedPool[int, int] = OrderedPool(2, square)
    with pool:
        assert list(pool.map([3])) == [9]  # the second worker never gets a task
    # close() waits up to 5 s per worker before it terminates one that does not end
    assert time.perf_counter() - started < 2
    assert all(w.process.exitcode == 0 for w in pool._workers)  # ended, not terminated
