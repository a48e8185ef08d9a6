"""Benchmark 1: the default recipes (MLP and CNN) against the seed's quickstart recipe,
run one after another in the same bench run."""

from __future__ import annotations

import statistics

from bench.common import PYTHON, run_process

MLP_TIME_RATIO = 0.75  # the MLP recipe: at most this share of the seed recipe's time
CNN_TIME_RATIO = 15.0  # the CNN recipe: at most this many times the seed recipe's time


def run(quick: bool, repeats: int = 1) -> dict:
    seed_cmd = [PYTHON, "-m", "bench.seed_recipe"]
    mlp_cmd = [PYTHON, "-m", "bench.default_recipe", "--arch", "mlp"]
    cnn_cmd = [PYTHON, "-m", "bench.default_recipe", "--arch", "cnn"]
    if quick:
        seed_cmd += ["--epochs", "1", "--max-batches", "20"]
        mlp_cmd += ["--max-steps", "20"]
        cnn_cmd += ["--max-steps", "20"]
    seed, ours = [], []
    for _ in range(repeats):  # alternate, so drifting machine load hits both alike
        seed.append(run_process(seed_cmd).json())
        ours.append(run_process(mlp_cmd).json())
    cnn = run_process(cnn_cmd).json()  # once: it takes minutes, not seconds
    seed_s = statistics.median(r["seconds"] for r in seed)
    ours_s = statistics.median(r["seconds"] for r in ours)
    return {
        "repeats": repeats,
        "seed_seconds": seed_s,
        "seed_accuracy": seed[-1]["accuracy"],
        "ours_seconds": ours_s,
        "ours_accuracy": ours[-1]["accuracy"],
        "time_ratio": ours_s / seed_s,
        "cnn_seconds": cnn["seconds"],
        "cnn_accuracy": cnn["accuracy"],
        "cnn_bf16": cnn["bf16"],
        "cnn_time_ratio": cnn["seconds"] / seed_s,
        "cnn_curve": cnn["curve"],
        "targets": {
            "ours_accuracy": ">= 0.900",
            "time_ratio": f"<= {MLP_TIME_RATIO}",
            "cnn_accuracy": ">= 0.935",
            "cnn_time_ratio": f"<= {CNN_TIME_RATIO}",
        },
        "met": ours[-1]["accuracy"] >= 0.9 and ours_s / seed_s <= MLP_TIME_RATIO,
        "cnn_met": cnn["accuracy"] >= 0.935 and cnn["seconds"] / seed_s <= CNN_TIME_RATIO,
    }
