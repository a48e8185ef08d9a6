"""Helpers shared by the benchmarks: timing, whole-process measurement, machine facts."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"  # generated inputs (git-ignored)
PYTHON = sys.executable
BIN = Path(sys.executable).parent


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass(frozen=True)
class ProcessRun:
    seconds: float  # wall time of the whole process
    peak_rss_mb: float  # the child's maximum resident set size
    stdout: str
    stderr: str

    def json(self) -> dict:
        """The last stdout line, parsed (the bench children report that way)."""
        return json.loads(self.stdout.strip().splitlines()[-1])


def _measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str, str]:
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return seconds, usage.ru_maxrss / 1024, proc.returncode, out.read(), err.read()


_launcher: ProcessPoolExecutor | None = None


def run_process(cmd: list[str], env: dict[str, str] | None = None) -> ProcessRun:
    """Run ``cmd`` to completion; measure its wall time and its own peak RSS (wait4).

    Linux carries a process's peak RSS across fork and exec, so a child forked from
    this (large) process would report our peak, not its own. Children are therefore
    started from a small launcher process (a forkserver worker).
    """
    global _launcher
    if _launcher is None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([])
        _launcher = ProcessPoolExecutor(1, mp_context=ctx)
    full_env = {**os.environ, **(env or {})}
    seconds, rss, code, stdout, stderr = _launcher.submit(_measure, cmd, full_env).result()
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}:\n{stderr[-2000:]}")
    return ProcessRun(seconds, rss, stdout, stderr)


def median_processes(cmds: list[list[str]], repeats: int, warmup: int = 1) -> list[ProcessRun]:
    """For each command, the run with the median wall time. The commands run in turns
    (A B A B ...) after warm-up runs, so a drift in the machine's load hits each alike."""
    for _ in range(warmup):
        for cmd in cmds:
            run_process(cmd)
    runs: list[list[ProcessRun]] = [[] for _ in cmds]
    for _ in range(repeats):
        for i, cmd in enumerate(cmds):
            runs[i].append(run_process(cmd))
    return [sorted(r, key=lambda x: x.seconds)[len(r) // 2] for r in runs]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_facts() -> dict[str, object]:
    versions = {}
    for dist in ("fashion-onnx", "numpy", "onnxruntime-gpu", "onnxruntime", "torch", "pillow"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {
        "cpu": cpu_model(),
        "cpus_usable": usable_cpus(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }
