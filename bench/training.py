"""Benchmark 1: the default recipe against the seed's quickstart recipe, side by side."""

from __future__ import annotations

import statistics

from bench.common import PYTHON, run_process


def run(quick: bool, repeats: int = 1) -> dict:
    seed_cmd = [PYTHON, "-m", "bench.seed_recipe"]
    ours_cmd = [PYTHON, "-m", "bench.default_recipe"]
    if quick:
        seed_cmd += ["--epochs", "1", "--max-batches", "20"]
        ours_cmd += ["--max-steps", "20"]
    seed, ours = [], []
    for _ in range(repeats):  # alternate, so drifting machine load hits both alike
        seed.append(run_process(seed_cmd).json())
        ours.append(run_process(ours_cmd).json())
    seed_s = statistics.median(r["seconds"] for r in seed)
    ours_s = statistics.median(r["seconds"] for r in ours)
    return {
        "repeats": repeats,
        "seed_seconds": seed_s,
        "seed_accuracy": seed[-1]["accuracy"],
        "ours_seconds": ours_s,
        "ours_accuracy": ours[-1]["accuracy"],
        "time_ratio": ours_s / seed_s,
        "targets": {"ours_accuracy": ">= 0.900", "time_ratio": "<= 0.75"},
        "met": ours[-1]["accuracy"] >= 0.9 and ours_s / seed_s <= 0.75,
    }
