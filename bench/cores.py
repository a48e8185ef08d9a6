"""Benchmark 7 (issue #20): every core busy.

- fashion-infer on 100,000 PNGs (10 folders of hard links to the test PNGs), whole
  process, against the decode-only Pillow loop over a process pool, alternating rounds;
- where the CPU goes at 200,000 files: the main process's CPU per image (sampled from
  /proc/<pid>/stat until it exits, as ../shared/tools/main_cpu_probe.py does) and the
  workers' (the rest of the process tree's rusage), with the engine's own share measured
  alone (one thread, batches of 512) beside it;
- throughput with 1 and 2 workers;
- arrays: the real test set as Debian ships it (IDX, gzipped) with its labels, both
  models; 100,000 images from a .npy against the plain script a user would write.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import time
from pathlib import Path

import numpy as np

from bench.common import BIN, PYTHON, WORK, median_processes, run_process

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def tree(source: Path, total: int, name: str) -> Path:
    """WORK/name: ``total`` hard links to source's PNGs in 10 folders (made once)."""
    root = WORK / name
    if (root / ".complete").exists():
        return root
    files = sorted(source.glob("*.png"))
    per = total // 10
    for d in range(10):
        sub = root / f"d{d}"
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(per):
            target = sub / f"{i:06d}.png"
            if not target.exists():
                os.link(files[(d * per + i) % len(files)], target)
    (root / ".complete").touch()
    return root


def infer(inputs: list[str], out: Path, *extra: str) -> list[str]:
    return [str(BIN / "fashion-infer"), *inputs, "-o", str(out), "--no-progress", *extra]


def cpu_split(cmd: list[str]) -> dict[str, float]:
    """Run ``cmd``; its wall time, the CPU its main process used (sampled every 5 ms from
    /proc until it exits) and the CPU of everything it started."""
    tick = os.sysconf("SC_CLK_TCK")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    main = 0.0
    while process.poll() is None:
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                main = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError):
            pass
        time.sleep(0.005)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_seconds": wall, "main_cpu_seconds": main, "workers_cpu_seconds": total - main}


def engine_us_per_image(images: np.ndarray) -> float:
    """The fp32 MLP alone, one thread, batches of 512, as each worker runs it."""
    from fashion_onnx.infer.contract import read_model
    from fashion_onnx.infer.runner import ModelRunner

    model, source = read_model("mlp")
    engine = ModelRunner(model, source, device="cpu", threads=1, batch_size=512)
    engine.predict_pixels(images[:1024])
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        engine.predict_pixels(images)
        best = min(best, time.process_time() - started)
    return 1e6 * best / len(images)


def _accuracy(stderr: str) -> float:
    found = re.search(r"correct: (\d+)/(\d+)", stderr)
    assert found, stderr
    return int(found.group(1)) / int(found.group(2))


def arrays(images: np.ndarray, count: int, repeats: int) -> dict:
    from fashion_onnx.infer.contract import default_model_path

    accuracy = {}
    if (DEBIAN / "t10k-images-idx3-ubyte.gz").exists():
        for model in ("mlp", "cnn"):
            run = run_process(
                [
                    str(BIN / "fashion-infer"),
                    str(DEBIAN / "t10k-images-idx3-ubyte.gz"),
                    "--labels",
                    str(DEBIAN / "t10k-labels-idx1-ubyte.gz"),
                    "--model",
                    model,
                    "--format",
                    "csv",
                    "-o",
                    str(WORK / f"idx-{model}.csv"),
                ]
            )
            accuracy[model] = _accuracy(run.stderr)
    npy = WORK / f"images-{count}.npy"
    if not npy.exists():
        np.save(npy, np.resize(images, (count, 28, 28)))
    ours, plain = median_processes(
        [
            infer([str(npy)], WORK / "npy-ours.csv", "--format", "csv"),
            [
                PYTHON,
                "-m",
                "bench.plain_npy",
                str(default_model_path("mlp")),
                str(npy),
                str(WORK / "npy-plain.csv"),
            ],
        ],
        repeats,
    )
    assert plain.json()["rows"] == count
    return {
        "idx_accuracy": accuracy,
        "npy_images": count,
        "npy_seconds": {"ours": ours.seconds, "plain_script": plain.seconds},
        "npy_vs_plain": plain.seconds / ours.seconds,
        "targets": {"npy_vs_plain": ">= 0.9", "idx_accuracy": "the model card's, exactly"},
    }


def run(pngs: Path, images: np.ndarray, quick: bool) -> dict:
    """``pngs``: the test images as PNG files; ``images``: the same as an array."""
    big, huge = (3_000, 6_000) if quick else (100_000, 200_000)
    repeats = 1 if quick else 3
    hundred = tree(pngs, big, f"{'quick-' if quick else ''}tree-{big // 1000}k")
    two_hundred = tree(pngs, huge, f"{'quick-' if quick else ''}tree-{huge // 1000}k")
    out = WORK / "cores.csv"
    decode_only = [PYTHON, "-m", "bench.decode_only", str(hundred)]
    ours, loop = median_processes(
        [infer([str(hundred)], out, "--format", "csv"), decode_only], repeats
    )
    scaling = {}
    for workers in (1, 2):
        (one,) = median_processes(
            [infer([str(hundred)], out, "--format", "csv", "--workers", str(workers))],
            repeats,
            warmup=0,
        )
        scaling[workers] = big / one.seconds
    splits = [cpu_split(infer([str(two_hundred)], out, "--format", "csv")) for _ in range(repeats)]
    split = sorted(splits, key=lambda s: s["main_cpu_seconds"])[len(splits) // 2]
    main_us = 1e6 * split["main_cpu_seconds"] / huge
    workers_us = 1e6 * split["workers_cpu_seconds"] / huge
    engine_us = engine_us_per_image(images)
    return {
        "images": big,
        "seconds": {"ours": ours.seconds, "decode_only": loop.seconds},
        "vs_decode_only": loop.seconds / ours.seconds,
        "split_images": huge,
        "split": split,
        "main_us_per_image": main_us,
        "workers_us_per_image": workers_us,
        "engine_us_per_image": engine_us,
        "workers_but_engine_us_per_image": workers_us - engine_us,
        "amdahl_worker_cores": workers_us / main_us,
        "scaling_images_per_s": scaling,
        "arrays": arrays(images, 5_000 if quick else 100_000, repeats),
        "targets": {
            "vs_decode_only": ">= 2.0",
            "main_us_per_image": "<= 2",
            "workers_but_engine_us_per_image": "<= 12 (measured on an AMD EPYC)",
        },
    }
