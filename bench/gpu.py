"""The GPU check: every CUDA path of the package on a real GPU, written to one JSON file.

Run it through ``scripts/gpu_check.sh`` (which installs onnxruntime-gpu from a folder of
wheels first), or directly: ``python -m bench.gpu --out gpu.json [--quick]``. It needs
the real FashionMNIST files (``FASHION_ONNX_DEBIAN_DIR`` pointing at the ``.gz`` files is
enough) and torch for the training and export sections. Each section is recorded as it
finishes, so a run cut short still leaves its figures; a section that fails records its
error. On a machine without CUDA the CUDA sections are skipped with the reason, and the
CPU figures are still written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FLOP_PER_IMAGE = 2 * (784 * 512 + 512 * 512 + 512 * 10)  # 1,337,344
INPUT_BYTES = 784 * 4  # one float32 [1, 28, 28] image
BATCHES = (64, 1024, 16384)
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class Report:
    """The JSON file, rewritten after every section."""

    def __init__(self, path: Path) -> None:
        self.path, self.data = path, {"started": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def section(self, name: str, run: Callable[[], Any]) -> Any:
        print(f"[gpu-check] {name} ...", flush=True)
        started = time.perf_counter()
        try:
            result = run()
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        if isinstance(result, dict):
            result.setdefault("seconds", round(time.perf_counter() - started, 2))
        self.data[name] = result
        self.path.write_text(json.dumps(self.data, indent=2) + "\n")
        print(f"[gpu-check] {name}: {json.dumps(result)[:600]}", flush=True)
        return result


def _run(cmd: list[str], timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


# -- facts ----------------------------------------------------------------------------


def facts() -> dict[str, Any]:
    import onnxruntime as ort

    from fashion_onnx.gpu import gpu_present
    from fashion_onnx.infer import Classifier
    from fashion_onnx.infer.runtime import cuda_problem, installed_runtimes

    smi = (
        _run(
            [
                "nvidia-smi",
                "--query-gpu=name,driver_version,memory.total,pcie.link.gen.max,pcie.link.width.max",
                "--format=csv,noheader",
            ]
        )
        if gpu_present()
        else None
    )
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "nvidia_smi": smi.stdout.strip() if smi and smi.returncode == 0 else None,
        "onnxruntime": ort.__version__,
        "onnxruntime_distributions": installed_runtimes(),
        "available_providers": ort.get_available_providers(),
        "gpu_present": gpu_present(),
        "cuda_problem": cuda_problem() if gpu_present() else "no GPU device node",
    }
    try:
        import torch

        out["torch"] = torch.__version__
        out["torch_cuda"] = torch.version.cuda
        out["torch_sees_gpu"] = torch.cuda.is_available()
    except ImportError:
        out["torch"] = None
    session = Classifier(device="auto").runner._session
    out["auto_session_providers"] = session.get_providers()
    out["auto_session_cuda_options"] = session.get_provider_options().get(CUDA)
    return out


def cuda_usable() -> bool:
    import onnxruntime as ort

    from fashion_onnx.gpu import gpu_present
    from fashion_onnx.infer.runtime import cuda_problem

    return CUDA in ort.get_available_providers() and gpu_present() and cuda_problem() is None


# -- tests ----------------------------------------------------------------------------


def gpu_tests() -> dict[str, Any]:
    result = _run(
        [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-rA"],
        cwd=ROOT,
    )
    lines = result.stdout.strip().splitlines()
    return {
        "exit_code": result.returncode,
        "summary": lines[-1] if lines else "",
        "tail": lines[-15:],
    }


# -- parity ---------------------------------------------------------------------------


def parity(images: np.ndarray) -> dict[str, Any]:
    from fashion_onnx.infer import Classifier

    cpu = Classifier(device="cpu").predict(images).probabilities
    gpu_classifier = Classifier(device="cuda")
    gpu = gpu_classifier.predict(images).probabilities
    diff = float(np.abs(gpu - cpu).max())
    return {
        "images": len(images),
        "provider": gpu_classifier.provider,
        "cuda_options": gpu_classifier.runner._session.get_provider_options().get(CUDA),
        "max_abs_probabilities": diff,
        "top1_identical": bool((gpu.argmax(1) == cpu.argmax(1)).all()),
        "target": "max |diff| <= 1e-5 and identical top-1",
        "met": diff <= 1e-5 and bool((gpu.argmax(1) == cpu.argmax(1)).all()),
    }


# -- engine ---------------------------------------------------------------------------


def _median_rate(go: Callable[[], object], count: int, repeats: int) -> float:
    go()  # warm-up: cuDNN/cuBLAS choose their kernels, arenas grow
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        go()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


def _passes(
    path: Path, provider: str, images: np.ndarray, batch: int
) -> dict[str, Callable[[], object]]:
    """One pass over ``images`` per way of feeding the session."""
    import onnxruntime as ort

    from fashion_onnx.infer.runtime import CUDA_OPTIONS, session_options

    providers: list[Any] = [(CUDA, CUDA_OPTIONS), CPU] if provider == CUDA else [CPU]
    session = ort.InferenceSession(str(path), session_options(None), providers=providers)
    assert session.get_providers()[0] == provider, session.get_providers()
    chunks = [images[i : i + batch] for i in range(0, len(images), batch)]

    def plain() -> None:
        for x in chunks:
            session.run(["probabilities"], {"input": x})

    passes: dict[str, Callable[[], object]] = {"run": plain}
    if provider != CUDA:
        return passes
    binding = session.io_binding()

    def bound() -> None:  # copied to the GPU once per batch, read back once
        for x in chunks:
            binding.bind_cpu_input("input", x)
            binding.bind_output("probabilities", "cuda")
            session.run_with_iobinding(binding)
            binding.copy_outputs_to_cpu()

    resident = [ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0) for x in chunks]

    def on_device() -> None:  # inputs already on the GPU, outputs left there: compute only
        for value in resident:
            binding.bind_ortvalue_input("input", value)
            binding.bind_output("probabilities", "cuda")
            session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    passes["io_binding"] = bound
    passes["device_resident"] = on_device
    return passes


def physical_bounds() -> dict[str, Any]:
    """Host-to-device copy bandwidth (pinned and pageable) and the GPU's FP32 matmul rate."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    size = 256 << 20
    host = torch.empty(size, dtype=torch.uint8).pin_memory()
    pageable = torch.empty(size, dtype=torch.uint8)
    device = torch.empty(size, dtype=torch.uint8, device="cuda")
    rates = {}
    for name, src in (("pinned", host), ("pageable", pageable)):
        device.copy_(src)
        torch.cuda.synchronize()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            device.copy_(src, non_blocking=False)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        rates[name] = size / statistics.median(times) / 1e9
    a = torch.randn(8192, 8192, device="cuda")
    b = torch.randn(8192, 8192, device="cuda")
    a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    fp32_tflops = 10 * 2 * 8192**3 / (time.perf_counter() - start) / 1e12
    return {
        "h2d_gb_per_s": rates,
        "fp32_matmul_tflops": fp32_tflops,
        "copy_bound_images_per_s": rates["pinned"] * 1e9 / INPUT_BYTES,
        "pageable_copy_bound_images_per_s": rates["pageable"] * 1e9 / INPUT_BYTES,
        "compute_bound_images_per_s": fp32_tflops * 1e12 / FLOP_PER_IMAGE,
    }


def engine(images: np.ndarray, quick: bool, with_cuda: bool) -> dict[str, Any]:
    from fashion_onnx.export.variants import write_fp16
    from fashion_onnx.infer.contract import default_model_path

    fp32 = default_model_path()
    fp16 = Path(tempfile.mkdtemp()) / "model.fp16.onnx"
    write_fp16(fp32, fp16)
    repeats = 3 if quick else 7
    rows = []
    for batch in BATCHES:
        row: dict[str, Any] = {"batch": batch}
        for precision, path in (("fp32", fp32), ("fp16", fp16)):
            providers = [CPU] + ([CUDA] if with_cuda else [])
            for provider in providers:
                if provider == CPU and precision == "fp16":
                    continue  # the CPU has no fp16 kernels worth measuring
                for way, go in _passes(path, provider, images, batch).items():
                    key = f"{'cuda' if provider == CUDA else 'cpu'}_{precision}_{way}"
                    row[key] = _median_rate(go, len(images), repeats)
        rows.append(row)
    out: dict[str, Any] = {"images_per_pass": len(images), "rows": rows}
    if with_cuda:
        bounds = physical_bounds()
        out["bounds"] = bounds
        best = max(v for r in rows for k, v in r.items() if k.startswith("cuda_fp32_io"))
        out["best_cuda_fp32_io_binding"] = best
        out["share_of_copy_bound"] = best / bounds["copy_bound_images_per_s"]
        out["share_of_compute_bound"] = best / bounds["compute_bound_images_per_s"]
        out["closer_bound"] = (
            "host-to-device copy"
            if out["share_of_copy_bound"] > out["share_of_compute_bound"]
            else "FP32 compute"
        )
    return out


# -- end to end -----------------------------------------------------------------------


def end_to_end(images: np.ndarray, quick: bool, with_cuda: bool) -> dict[str, Any]:
    from PIL import Image

    folder = Path(tempfile.mkdtemp()) / "png"
    folder.mkdir()
    for i, pixels in enumerate(images):
        Image.fromarray(pixels, mode="L").save(folder / f"{i:05d}.png")
    devices = ["cpu"] + (["cuda"] if with_cuda else [])
    wall: dict[str, list[float]] = {d: [] for d in devices}
    summaries = {}
    for _ in range(1 if quick else 3):  # alternating rounds
        for device in devices:
            out = folder.parent / f"{device}.csv"
            cmd = [sys.executable, "-m", "fashion_onnx.infer", str(folder), "--device", device]
            start = time.perf_counter()
            result = _run([*cmd, "--format", "csv", "-o", str(out), "--no-progress"])
            wall[device].append(time.perf_counter() - start)
            if result.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr}")
            summaries[device] = result.stderr.strip().splitlines()[-1]
    rate = {d: len(images) / statistics.median(t) for d, t in wall.items()}
    agreement = None
    if with_cuda:  # the same file gets the same class; confidences agree to 6 decimals
        rows = {d: _csv_rows(folder.parent / f"{d}.csv") for d in devices}
        agreement = {
            "rows": len(rows["cpu"]),
            "same_classes": all(rows["cpu"][p][0] == rows["cuda"][p][0] for p in rows["cpu"]),
            "max_confidence_diff": max(
                abs(rows["cpu"][p][1] - rows["cuda"][p][1]) for p in rows["cpu"]
            ),
        }
    return {
        "images": len(images),
        "whole_process_images_per_s": rate,
        "cuda_vs_cpu": rate["cuda"] / rate["cpu"] if with_cuda else None,
        "cpu_cuda_agreement": agreement,
        "summaries": summaries,
    }


def _csv_rows(path: Path) -> dict[str, tuple[str, float]]:
    import csv

    with path.open(newline="") as handle:
        return {r["path"]: (r["class"], float(r["confidence"])) for r in csv.DictReader(handle)}


# -- training -------------------------------------------------------------------------


def training(quick: bool, with_cuda: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp())
    for device in ["cpu"] + (["cuda"] if with_cuda else []):
        ckpt = workdir / f"{device}.pth"
        cmd = [sys.executable, "-m", "fashion_onnx.train", "--device", device, "-o", str(ckpt)]
        if quick:
            cmd.append("--dry-run")
        start = time.perf_counter()
        result = _run(cmd, timeout=900)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            out[device] = {"error": result.stderr[-2000:]}
            continue
        record = json.loads(ckpt.with_suffix(".json").read_text())
        out[device] = {
            "whole_process_seconds": seconds,
            "train_seconds": record["seconds"],
            "test_accuracy": record["test_accuracy"],
            "device": record["device"],
        }
        if device == "cuda":
            out["cuda_checkpoint"] = _check_checkpoint(ckpt)
    return out


def _check_checkpoint(ckpt: Path) -> dict[str, Any]:
    """The CUDA run's .pth loads on the CPU the quickstart way and exports verified."""
    import torch

    from fashion_onnx.export import export_onnx
    from fashion_onnx.models import NeuralNetwork

    state = torch.load(ckpt, map_location=None, weights_only=True)
    devices = sorted({str(t.device) for t in state.values()})
    NeuralNetwork().load_state_dict(state)
    report = export_onnx(ckpt, ckpt.with_suffix(".onnx"))
    assert report.parity is not None
    return {
        "tensor_devices": devices,
        "quickstart_load": "ok",
        "export_max_abs_logits": report.parity.max_abs_logits,
        "export_argmax_agreement": report.parity.argmax_agreement,
    }


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


SECTIONS = ("gpu_tests", "parity", "engine", "end_to_end", "training")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    args = parser.parse_args()

    from fashion_onnx.fashion_mnist import load_split

    report = Report(args.out)
    test_images, _ = load_split("test")
    report.section("facts", facts)
    with_cuda = cuda_usable()
    report.data["cuda_usable"] = with_cuda
    skip = {"skipped": "CUDA is not usable here (see facts.cuda_problem)"}
    count = 1000 if args.quick else len(test_images)
    x = (test_images.reshape(-1, 1, 28, 28).astype(np.float32) / 255)[:count]
    tiled = np.concatenate([x] * (1 if args.quick else 7))[: 1024 if args.quick else 65536]
    runs: dict[str, Callable[[], Any]] = {
        "gpu_tests": gpu_tests if with_cuda else lambda: skip,
        "parity": (lambda: parity(test_images)) if with_cuda else lambda: skip,
        "engine": lambda: engine(tiled, args.quick, with_cuda),
        "end_to_end": lambda: end_to_end(test_images[:count], args.quick, with_cuda),
        "training": lambda: training(args.quick, _torch_cuda()),  # torch's CUDA, not ORT's
    }
    for name in args.sections:
        report.section(name, runs[name])
    report.data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    args.out.write_text(json.dumps(report.data, indent=2) + "\n")


if __name__ == "__main__":
    main()
