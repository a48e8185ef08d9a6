"""Smaller or faster copies of a verified fp32 file: int8 and fp16.

int8 comes two ways, and the export keeps whichever is better for the model at hand:
- dynamic: int8 weights (per channel); activations quantized at run time, per batch;
- static (QDQ): int8 weights and activations, with activation ranges calibrated on
  training images (never test images).
"Better" is measured, not assumed: the faster at batch 64 among those within the
accuracy bound; the report gives both candidates' figures and the reason.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.transformers.float16 import convert_float_to_float16

from fashion_onnx.constants import INPUT_NAME, META_PRECISION, OUTPUT_NAMES
from fashion_onnx.export.verify import accuracy, cpu_session, run_session

PRECISIONS = ("int8", "fp16")
INT8_METHODS = ("dynamic", "static")
EVAL_BATCH = 1024
SPEED_BATCH = 64  # the batch size the int8 choice is timed at
# Images timed per round: 8 batches. Each of the 5 rounds runs every file in turn, so the
# median compares them under the same load. 2,048 made the CNN's export 27 s longer and
# chose the same (static, 1.70x fp32 at 512 images, 1.75x at 2,048, on the Intel Xeon).
SPEED_IMAGES = 512
QUANTIZED_OPS = ["Conv", "MatMul", "Gemm"]


@dataclass(frozen=True)
class VariantReport:
    precision: str  # int8 | fp16
    path: str
    size_bytes: int
    accuracy: float | None  # on the true labels, when there are labels
    accuracy_delta_points: float | None  # variant minus fp32, in percentage points
    argmax_agreement: float  # with the fp32 file's top-1
    max_abs_probabilities: float  # against the fp32 file
    method: str = ""  # int8: dynamic | static
    speedup_batch64: float | None = None  # int8: against fp32, measured in this export
    candidates: list[dict[str, object]] = field(default_factory=list)  # int8: both methods
    choice: str = ""  # int8: why this method


def variant_path(fp32_path: Path, precision: str) -> Path:
    """``model.onnx`` -> ``model.int8.onnx``."""
    return fp32_path.with_name(f"{fp32_path.stem}.{precision}{fp32_path.suffix}")


class _Calibration(CalibrationDataReader):  # type: ignore[misc]  # untyped base
    """Training images for the static quantizer, 64 at a time."""

    def __init__(self, images: np.ndarray) -> None:
        self._batches: Iterator[np.ndarray] = iter(
            [images[i : i + 64] for i in range(0, len(images), 64)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def write_int8(fp32_path: Path, out: Path, method: str, calibration: np.ndarray | None) -> None:
    """int8 weights, per output channel; activations dynamic, or static from ``calibration``
    (float32 (N, 1, 28, 28) training images). Conv, MatMul and Gemm are quantized."""
    root = logging.getLogger()  # the quantizer logs advice there; it is not for our users
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        if method == "dynamic":
            quantize_dynamic(
                str(fp32_path),
                str(out),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=QUANTIZED_OPS,
            )
        elif method == "static":
            if calibration is None:
                raise ValueError("static quantization needs calibration images")
            quantize_static(
                str(fp32_path),
                str(out),
                _Calibration(calibration),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,  # u8 activations, s8 weights: x86's VNNI path
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=QUANTIZED_OPS,
                calibrate_method=CalibrationMethod.MinMax,
            )
        else:
            raise ValueError(f"int8 method must be one of {INT8_METHODS}, got {method!r}")
    finally:
        root.setLevel(level)
    _stamp(out, "int8")


def write_fp16(fp32_path: Path, out: Path) -> None:
    """fp16 weights and arithmetic; float32 inputs and outputs kept, so callers feed and
    read the same arrays as for fp32."""
    onnx.save(convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True), str(out))
    _stamp(out, "fp16")


def _stamp(path: Path, precision: str) -> None:
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == META_PRECISION:
            prop.value = precision
    onnx.save(model, str(path))


def choose_int8(
    drops: dict[str, float], speeds: dict[str, float], max_drop_points: float
) -> tuple[str, bool]:
    """Which int8 method to keep: the fastest of those that lose at most
    ``max_drop_points``; when none does, the one that loses least.

    Args:
        drops: test-accuracy loss of each method, in points (0 when unmeasured).
        speeds: images/s of each method at batch 64.
        max_drop_points: the accuracy bound.

    Returns:
        (the method, whether it is within the bound).
    """
    within = [m for m in drops if drops[m] <= max_drop_points]
    if within:
        return max(within, key=lambda m: speeds[m]), True
    return min(drops, key=lambda m: drops[m]), False


def compare_with_fp32(
    variant: Path,
    precision: str,
    images: np.ndarray,
    labels: np.ndarray | None,
    fp32_probs: np.ndarray,
) -> VariantReport:
    """Score the variant on ``images`` against the fp32 outputs and the true labels."""
    _, probs = run_session(cpu_session(variant), images, EVAL_BATCH)
    acc, acc32 = accuracy(probs, labels), accuracy(fp32_probs, labels)
    return VariantReport(
        precision=precision,
        path=str(variant),
        size_bytes=variant.stat().st_size,
        accuracy=acc,
        accuracy_delta_points=None if acc is None or acc32 is None else 100 * (acc - acc32),
        argmax_agreement=float((probs.argmax(1) == fp32_probs.argmax(1)).mean()),
        max_abs_probabilities=float(np.abs(probs - fp32_probs).max()),
    )


def throughputs(paths: dict[str, Path], images: np.ndarray, rounds: int = 5) -> dict[str, float]:
    """Images/s of each file at batch 64 on the CPU provider with one engine thread (as
    fashion-infer's workers run it): medians of ``rounds`` rounds that run every file in
    turn, so load drifts hit them alike."""
    from fashion_onnx.infer.runtime import session_options

    sessions = {
        name: ort.InferenceSession(
            str(path), session_options(threads=1), providers=["CPUExecutionProvider"]
        )
        for name, path in paths.items()
    }
    batches = [images[i : i + SPEED_BATCH] for i in range(0, len(images), SPEED_BATCH)]
    times: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(rounds + 1):
        for name, session in sessions.items():
            start = time.perf_counter()
            for x in batches:
                session.run([OUTPUT_NAMES[1]], {INPUT_NAME: x})
            if round_:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    return {name: len(images) / statistics.median(t) for name, t in times.items()}
