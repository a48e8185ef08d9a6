"""Benchmark 3: ``fashion-infer DIR`` on the 10k test images as PNG, as whole processes,
beside (a) the decode-only limit and (b) the quickstart-style one-at-a-time loop.

All three run in the same alternating rounds. Each also runs on a one-image folder, and
that run's wall time is reported as its start-up; throughput is given whole-process
(the target's definition) and with start-up taken out.
"""

from __future__ import annotations

from pathlib import Path

from bench.common import BIN, PYTHON, WORK, median_processes, usable_cpus


def infer_cmd(folder: Path, out: Path, *extra: str) -> list[str]:
    return [
        str(BIN / "fashion-infer"),
        str(folder),
        "--format",
        "csv",
        "-o",
        str(out),
        "--no-progress",
        *extra,
    ]


def commands(folder: Path, checkpoint: Path, workers: int) -> dict[str, list[str]]:
    return {
        "ours": infer_cmd(folder, WORK / "e2e.csv"),
        "ours_cnn": infer_cmd(folder, WORK / "e2e-cnn.csv", "--model", "cnn"),
        "decode_only": [PYTHON, "-m", "bench.decode_only", str(folder), "--workers", str(workers)],
        "quickstart_loop": [PYTHON, "-m", "bench.quickstart_predict", str(checkpoint), str(folder)],
    }


def run(folder: Path, one: Path, checkpoint: Path, count: int, quick: bool) -> dict:
    """``folder`` holds ``count`` PNGs; ``one`` holds a single PNG (for start-up times)."""
    workers = usable_cpus()
    full = commands(folder, checkpoint, workers)
    small = commands(one, checkpoint, workers)
    names = list(full)
    runs = median_processes([*full.values(), *small.values()], 1 if quick else 5)
    wall = {name: runs[i].seconds for i, name in enumerate(names)}
    startup = {name: runs[len(names) + i].seconds for i, name in enumerate(names)}
    for name, result in zip(names, runs, strict=False):
        if not name.startswith("ours"):
            assert result.json()["files"] == count, (name, result.stdout)
    rate = {name: count / wall[name] for name in names}
    steady = {name: count / max(wall[name] - startup[name], 1e-9) for name in names}
    return {
        "images": count,
        "workers": workers,
        "wall_seconds": wall,
        "startup_seconds": startup,
        "images_per_s": rate,
        "steady_images_per_s": steady,
        "vs_decode_only": rate["ours"] / rate["decode_only"],
        "vs_quickstart_loop": rate["ours"] / rate["quickstart_loop"],
        "steady_vs_decode_only": steady["ours"] / steady["decode_only"],
        "targets": {"vs_decode_only": ">= 0.8", "vs_quickstart_loop": ">= 3"},
        "met": rate["ours"] / rate["decode_only"] >= 0.8
        and rate["ours"] / rate["quickstart_loop"] >= 3,
    }
