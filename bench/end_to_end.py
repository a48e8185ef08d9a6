"""Benchmark 3: ``fashion-infer DIR`` on the 10k test images as PNG, as whole processes,
beside (a) the decode-only limit and (b) the quickstart-style one-at-a-time loop."""

from __future__ import annotations

from pathlib import Path

from bench.common import BIN, PYTHON, WORK, median_processes, run_process, usable_cpus


def infer_cmd(folder: Path, out: Path) -> list[str]:
    return [
        str(BIN / "fashion-infer"),
        str(folder),
        "--format",
        "csv",
        "-o",
        str(out),
        "--no-progress",
    ]


def run(folder: Path, checkpoint: Path, count: int, quick: bool) -> dict:
    workers = usable_cpus()
    repeats = 1 if quick else 7
    ours, decode = median_processes(
        [
            infer_cmd(folder, WORK / "e2e.csv"),
            [PYTHON, "-m", "bench.decode_only", str(folder), "--workers", str(workers)],
        ],
        repeats,
    )
    loop = run_process([PYTHON, "-m", "bench.quickstart_predict", str(checkpoint), str(folder)])
    assert decode.json()["files"] == loop.json()["files"] == count
    rate = {
        name: count / r.seconds
        for name, r in (("ours", ours), ("decode_only", decode), ("quickstart_loop", loop))
    }
    return {
        "images": count,
        "workers": workers,
        "images_per_s": rate,
        "vs_decode_only": rate["ours"] / rate["decode_only"],
        "vs_quickstart_loop": rate["ours"] / rate["quickstart_loop"],
        "targets": {"vs_decode_only": ">= 0.8", "vs_quickstart_loop": ">= 3"},
        "met": rate["ours"] / rate["decode_only"] >= 0.8
        and rate["ours"] / rate["quickstart_loop"] >= 3,
    }
