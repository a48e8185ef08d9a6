"""Worker processes that take tasks in turn and give results back in order: a process
pool with no helper threads.

``multiprocessing.Pool`` keeps three threads in this process, and one of them (the worker
handler) waits on the result pipe without reading it, so it spins while results queue up:
measured here, it cost the main process more CPU than all of its own work. Here each
worker has its own pair of pipes; task ``k`` goes to worker ``k % n``, and its result is
read from that worker when its turn comes, so the results come back in task order.

A worker that dies (a segfault in a decoder, the OOM killer) is replaced and its pending
tasks are sent again; a task that kills a worker twice raises ``WorkerDied``, and the
caller decides what it costs.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def start(process: BaseProcess) -> None:
    """Start a (forked) process with the garbage collector's objects frozen: the child
    never collects what it inherited. Otherwise a collection in the child can run the
    destructor of an object left unreferenced in the parent, such as an onnxruntime
    session, whose thread pool's condition variables then hang the child for good (seen:
    ``pthread_cond_destroy`` under ``gc_collect_main`` in a forked child)."""
    gc.freeze()
    try:
        process.start()
    finally:
        gc.unfreeze()


class WorkerDied(RuntimeError):
    """A task killed its worker process twice."""

    def __init__(self, task: object, exitcode: int | None) -> None:
        how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else exitcode
        super().__init__(f"a worker process died twice on this task (exit {how})")
        self.task = task


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, as text."""

    def __str__(self) -> str:
        return f"\n\n{self.args[0]}"


def die_with_parent(parent: int) -> None:
    """Have this (forked) process killed when the process ``parent`` dies, even by SIGKILL
    (Linux: prctl PR_SET_PDEATHSIG), and exit now if it already has."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux, or no libc to call: the pipes' ends tell it instead
        pass
    if os.getppid() != parent:  # it died before the call above
        os._exit(0)


def _serve(
    tasks: Connection,
    results: Connection,
    work: Callable[[Any], Any],
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
    inherited: list[Connection],
    parent: int,
) -> None:
    """A worker's life: run ``work`` on each task until the pipe closes; killed with its
    ``parent`` (pid), and quiet if it finds the parent gone when it answers.

    ``inherited``: the parent's ends of this worker's pipes and of the other workers',
    which the fork copied here; closed at once, or the task pipes would stay open here and
    no worker would see their end when the parent is killed (SIGKILL, a power cut of the
    parent alone): they would wait for tasks for good.

    A thread here takes the tasks off the pipe as they come, so the parent never blocks
    sending one (a large chunk) while this process blocks sending a result it has not
    read yet: no deadlock whatever the sizes.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    die_with_parent(parent)
    for connection in inherited:
        connection.close()
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    end = object()

    def receive() -> None:
        while True:
            try:
                task = tasks.recv()
            except (EOFError, OSError):
                task = None
            if task is None:  # the parent's "no more" (an EOF may never come: other
                inbox.put(end)  # children forked later hold copies of the pipe's end)
                return
            inbox.put(task)

    threading.Thread(target=receive, daemon=True).start()
    if initializer is not None:
        initializer(*initargs)
    while (task := inbox.get()) is not end:
        try:
            result = (True, work(task))
        except BaseException as exc:  # a bug: its traceback goes to the parent
            result = (False, (exc, "".join(traceback.format_exception(exc))))
        try:
            try:
                results.send(result)
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception:  # the exception itself cannot be pickled
                error, text = result[1]
                results.send((False, (RuntimeError(repr(error)), text)))
        except (BrokenPipeError, ConnectionResetError):  # the parent is gone: end quietly
            os._exit(0)


class _Worker:
    def __init__(self, ctx: Any, target: tuple[Any, ...], others: list[_Worker]) -> None:
        task_reader, self.tasks = ctx.Pipe(duplex=False)
        self.results, result_writer = ctx.Pipe(duplex=False)
        inherited = [self.tasks, self.results]  # the parent's ends, which the fork copies
        inherited += [c for w in others for c in (w.tasks, w.results)]
        self.process: BaseProcess = ctx.Process(
            target=_serve,
            args=(task_reader, result_writer, *target, inherited, os.getpid()),
            daemon=True,
        )
        start(self.process)
        task_reader.close()
        result_writer.close()
        self.pending: deque[Any] = deque()  # tasks sent, results not read yet

    def close(self) -> None:
        self.tasks.close()
        self.results.close()


class OrderedPool(Generic[T, R]):
    """``workers`` processes that run ``work(task)``, each after ``initializer(*initargs)``.

    Use as a context manager; ``map`` yields the results in task order with at most
    ``per_worker`` tasks queued at each worker.
    """

    def __init__(
        self,
        workers: int,
        work: Callable[[T], R],
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        # fork where it is safe and cheapest (Linux): workers start without re-importing.
        self._ctx = mp.get_context("fork" if sys.platform.startswith("linux") else None)
        self._target = (work, initializer, initargs)
        self._workers: list[_Worker] = []
        for _ in range(workers):
            self._workers.append(_Worker(self._ctx, self._target, self._workers))

    def __enter__(self) -> OrderedPool[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(wait=exc[0] is None)

    def close(self, wait: bool = True) -> None:
        """Tell the workers there is no more (they end when idle); without ``wait``, or
        when they do not end, terminate them."""
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.tasks.send(None)
            worker.tasks.close()
        for worker in self._workers:
            if wait:
                worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join()
            worker.results.close()

    def _result(self, index: int) -> R:
        """The result of the oldest pending task of worker ``index``."""
        worker = self._workers[index]
        retried = False
        while True:
            try:
                ok, value = worker.results.recv()
                break
            except EOFError:  # it died: a new worker takes its pending tasks again
                worker.process.join()
                code = worker.process.exitcode
                if retried:
                    task = worker.pending.popleft()
                    self._replace(index, worker.pending)
                    raise WorkerDied(task, code) from None
                retried = True
                worker = self._replace(index, worker.pending)
        worker.pending.popleft()
        if not ok:
            exc, text = value
            raise exc from RemoteTraceback(text)
        return value  # type: ignore[no-any-return]

    def _replace(self, index: int, pending: deque[Any]) -> _Worker:
        self._workers[index].close()
        others = self._workers[:index] + self._workers[index + 1 :]
        worker = self._workers[index] = _Worker(self._ctx, self._target, others)
        for task in pending:
            worker.tasks.send(task)
            worker.pending.append(task)
        return worker

    def map(
        self,
        tasks: Iterable[T],
        per_worker: int = 4,
        on_death: Callable[[WorkerDied], R] | None = None,
    ) -> Iterator[R]:
        """``work(task)`` for each task, in order, computed ``per_worker`` deep per worker.
        ``on_death``: what a task that killed two workers gives instead (else the
        ``WorkerDied`` is raised)."""
        n = len(self._workers)
        sent = received = 0
        window = per_worker * n

        def result() -> R:
            try:
                return self._result(received % n)
            except WorkerDied as died:
                if on_death is None:
                    raise
                return on_death(died)

        for task in tasks:
            worker = self._workers[sent % n]
            worker.tasks.send(task)
            worker.pending.append(task)
            sent += 1
            if sent - received >= window:
                yield result()
                received += 1
        while received < sent:
            yield result()
            received += 1
