"""Benchmark 2: engine throughput on the 10k real test images held in memory.

ONNX Runtime fp32 / int8 / fp16 at batch 1, 64 and 1024, beside torch eager with the
same thread count, and beside the roofline: the machine's sgemm GFLOP/s (numpy, same
run) divided by the MLP's 1.337 MFLOP per image.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from bench.common import median_seconds, usable_cpus

FLOP_PER_IMAGE = 2 * (784 * 512 + 512 * 512 + 512 * 10)  # 1,337,344 (multiply-adds x 2)
BATCHES = (1, 64, 1024)


def sgemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best-case float32 matrix multiply rate of this machine, through numpy's BLAS."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    seconds = median_seconds(lambda: a @ b, repeats)
    return 2 * size**3 / seconds / 1e9


def ort_pass(path, images: np.ndarray, batch: int, threads: int) -> Callable[[], None]:
    """One pass over ``images`` through onnxruntime, ``batch`` at a time."""
    import onnxruntime as ort

    from fashion_onnx.infer.runtime import session_options

    session = ort.InferenceSession(
        str(path), session_options(threads), providers=["CPUExecutionProvider"]
    )

    def go() -> None:
        for start in range(0, len(images), batch):
            session.run(["probabilities"], {"input": images[start : start + batch]})

    return go


def torch_pass(checkpoint, images: np.ndarray, batch: int, threads: int) -> Callable[[], None]:
    """The same pass in torch eager, ``torch.inference_mode``, the same thread count."""
    import torch

    from fashion_onnx.models import load_model

    torch.set_num_threads(threads)
    model = load_model(checkpoint)
    x = torch.from_numpy(images)

    def go() -> None:
        with torch.inference_mode():
            for start in range(0, len(x), batch):
                torch.softmax(model(x[start : start + batch]), dim=1)

    return go


def throughputs(
    passes: dict[str, Callable[[], None]], count: int, repeats: int
) -> dict[str, float]:
    """Images/s of each pass: medians of ``repeats`` rounds, each round running every pass
    once in turn (after one warm-up round), so load drifts hit all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in passes}
    for round_ in range(repeats + 1):
        for name, go in passes.items():
            time.sleep(0.1)  # let the previous engine's threads stop spinning
            start = time.perf_counter()
            go()
            if round_:
                times[name].append(time.perf_counter() - start)
    return {name: count / statistics.median(t) for name, t in times.items()}


def _row(
    files: dict[str, object], checkpoint, images: np.ndarray, batch: int, repeats: int
) -> dict:
    """One batch size: torch eager and every ONNX file, in alternating rounds."""
    threads = usable_cpus()
    passes = {"torch": torch_pass(checkpoint, images, batch, threads)}
    for precision, path in files.items():
        passes[precision] = ort_pass(path, images, batch, threads)
    row = {"batch": batch, **throughputs(passes, len(images), repeats)}
    row["fp32_vs_torch"] = row["fp32"] / row["torch"]
    row["int8_vs_fp32"] = row["int8"] / row["fp32"]
    row["fp16_vs_fp32"] = row["fp16"] / row["fp32"]
    return row


def run_cnn(files: dict[str, object], checkpoint, images: np.ndarray, quick: bool) -> dict:
    """The CNN's engine rows: fp32 / int8 / fp16 beside torch eager (no roofline: its
    convolutions are not one sgemm)."""
    images = images[: 128 if quick else 4096]  # 44 MFLOP an image: fewer images suffice
    rows = [_row(files, checkpoint, images, batch, 2 if quick else 5) for batch in BATCHES]
    return {"threads": usable_cpus(), "images": len(images), "rows": rows}


def run(files: dict[str, object], checkpoint, images: np.ndarray, quick: bool) -> dict:
    threads = usable_cpus()
    repeats = 2 if quick else 7
    if quick:
        images = images[:1024]
    started = time.perf_counter()
    gflops = sgemm_gflops(1024 if quick else 2048, repeats)
    roofline = gflops * 1e9 / FLOP_PER_IMAGE
    rows = []
    for batch in BATCHES:
        row = _row(files, checkpoint, images, batch, repeats)
        row["fp32_vs_roofline"] = row["fp32"] / roofline
        if batch >= 64:  # one engine thread, as in fashion-infer's worker processes
            single = throughputs(
                {p: ort_pass(files[p], images, batch, 1) for p in ("fp32", "int8")},
                len(images),
                repeats,
            )
            row["int8_vs_fp32_one_thread"] = single["int8"] / single["fp32"]
        rows.append(row)
    big = [r for r in rows if r["batch"] >= 64]
    return {
        "threads": threads,
        "images": len(images),
        "sgemm_gflops": gflops,
        "roofline_images_per_s": roofline,
        "rows": rows,
        "seconds": time.perf_counter() - started,
        "targets": {
            "fp32_vs_torch (batch>=64)": ">= 1.2",
            "fp32_vs_roofline (batch>=64)": ">= 0.85",
            "int8_vs_fp32 (batch>=64)": ">= 3.0",
        },
        "met": {
            "fp32_vs_torch": all(r["fp32_vs_torch"] >= 1.2 for r in big),
            "fp32_vs_roofline": all(r["fp32_vs_roofline"] >= 0.85 for r in big),
            "int8_vs_fp32": all(r["int8_vs_fp32"] >= 3.0 for r in big),
        },
    }
