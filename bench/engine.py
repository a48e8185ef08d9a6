"""Benchmark 2: engine throughput on the 10k real test images held in memory.

ONNX Runtime fp32 / int8 / fp16 at batch 1, 64 and 1024, beside torch eager with the
same thread count, and beside the roofline: the machine's sgemm GFLOP/s (numpy, same
run) divided by the MLP's 1.337 MFLOP per image.
"""

from __future__ import annotations

import time

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


def ort_throughput(path, images: np.ndarray, batch: int, threads: int, repeats: int) -> float:
    import onnxruntime as ort

    from fashion_onnx.infer.runtime import session_options

    session = ort.InferenceSession(
        str(path), session_options(threads), providers=["CPUExecutionProvider"]
    )

    def go() -> None:
        for start in range(0, len(images), batch):
            session.run(["probabilities"], {"input": images[start : start + batch]})

    return len(images) / median_seconds(go, repeats)


def torch_throughput(
    checkpoint, images: np.ndarray, batch: int, threads: int, repeats: int
) -> float:
    import torch

    from fashion_onnx.models import load_model

    torch.set_num_threads(threads)
    model = load_model(checkpoint)
    x = torch.from_numpy(images)

    def go() -> None:
        with torch.inference_mode():
            for start in range(0, len(x), batch):
                torch.softmax(model(x[start : start + batch]), dim=1)

    return len(images) / median_seconds(go, repeats)


def run(files: dict[str, object], checkpoint, images: np.ndarray, quick: bool) -> dict:
    threads = usable_cpus()
    repeats = 2 if quick else 5
    if quick:
        images = images[:1024]
    started = time.perf_counter()
    gflops = sgemm_gflops(1024 if quick else 2048, repeats)
    roofline = gflops * 1e9 / FLOP_PER_IMAGE
    rows = []
    for batch in BATCHES:
        row = {
            "batch": batch,
            "torch": torch_throughput(checkpoint, images, batch, threads, repeats),
        }
        for precision, path in files.items():
            row[precision] = ort_throughput(path, images, batch, threads, repeats)
        row["fp32_vs_torch"] = row["fp32"] / row["torch"]
        row["fp32_vs_roofline"] = row["fp32"] / roofline
        row["int8_vs_fp32"] = row["int8"] / row["fp32"]
        row["fp16_vs_fp32"] = row["fp16"] / row["fp32"]
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
