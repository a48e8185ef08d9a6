"""The ordered worker pool: results in task order, and its workers end as soon as it is
closed (a forked worker holds copies of the other pipes, so it must be told to stop)."""

from __future__ import annotations

import os
import time

import pytest

from fashion_onnx.infer.pool import OrderedPool, WorkerDied


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


class DiesOn:
    """Squares, but the worker process dies (as a segfault would kill it) on ``fatal``:
    once if ``marker`` names a file that does not exist yet (it is created), else always."""

    def __init__(self, fatal: int, marker: str | None) -> None:
        self.fatal, self.marker = fatal, marker

    def __call__(self, x: int) -> int:
        if x == self.fatal:
            if self.marker is None:
                os._exit(139)
            if not os.path.exists(self.marker):
                open(self.marker, "w").close()
                os._exit(139)
        return x * x


def test_a_dead_worker_is_replaced_and_its_tasks_done_again(tmp_path) -> None:
    with OrderedPool(2, DiesOn(7, str(tmp_path / "died-once"))) as pool:
        assert list(pool.map(range(20), per_worker=3)) == [x * x for x in range(20)]
    assert (tmp_path / "died-once").exists(), "a worker did die"


def test_a_task_that_kills_two_workers_is_named() -> None:
    with OrderedPool(2, DiesOn(5, None)) as pool:
        results = pool.map(range(10), per_worker=2)
        assert [next(results) for _ in range(5)] == [0, 1, 4, 9, 16]
        with pytest.raises(WorkerDied, match="died twice on this task") as died:
            next(results)
        assert died.value.task == 5


def test_a_chunk_that_kills_its_workers_becomes_failures_and_the_run_goes_on(
    tmp_path, monkeypatch, test_set
) -> None:
    """A decoder that crashes the process (as a segfault would) on one file: that file's
    chunk is reported file by file, every other chunk is classified."""
    from PIL import Image

    from fashion_onnx.infer import Classifier, files
    from fashion_onnx.infer.sources import PATH_CHUNK

    for i in range(PATH_CHUNK + 100):
        name = "poison.png" if i == PATH_CHUNK + 50 else f"{i:04d}.png"
        Image.fromarray(test_set[0][i], mode="L").save(tmp_path / name)
    real_decode = files.decode

    def crashing(chunk, preparation):
        if any(p.endswith("poison.png") for p in chunk.paths):
            os._exit(139)
        return real_decode(chunk, preparation)

    monkeypatch.setattr(files, "decode", crashing)  # the workers fork with it
    paths = sorted(str(p) for p in tmp_path.iterdir())
    batches = list(Classifier(device="cpu").classify_files(paths, workers=2))
    classified = [p for b in batches for p in b.paths]
    failed = [f for b in batches for f in b.failures]
    assert classified == paths[:PATH_CHUNK]
    assert [f.path for f in failed] == paths[PATH_CHUNK:]
    assert all("died twice" in f.reason for f in failed)
