"""Smaller or faster copies of a verified fp32 file: int8 (dynamic quantization) and fp16."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.float16 import convert_float_to_float16

from fashion_onnx.constants import META_PRECISION
from fashion_onnx.export.verify import accuracy, cpu_session, run_session

PRECISIONS = ("int8", "fp16")
EVAL_BATCH = 1024


@dataclass(frozen=True)
class VariantReport:
    precision: str  # int8 | fp16
    path: str
    size_bytes: int
    accuracy: float | None  # on the true labels, when there are labels
    accuracy_delta_points: float | None  # variant minus fp32, in percentage points
    argmax_agreement: float  # with the fp32 file's top-1
    max_abs_probabilities: float  # against the fp32 file


def variant_path(fp32_path: Path, precision: str) -> Path:
    """``model.onnx`` -> ``model.int8.onnx``."""
    return fp32_path.with_name(f"{fp32_path.stem}.{precision}{fp32_path.suffix}")


def write_variant(fp32_path: Path, out: Path, precision: str) -> None:
    """Write the ``precision`` copy of the fp32 file to ``out``; metadata carries over."""
    if precision == "int8":
        # Weights as signed int8, per output channel; activations quantized at run time.
        # The quantizer logs advice on the root logger; it is not for our users.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(
                str(fp32_path),
                str(out),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul", "Gemm"],
            )
        finally:
            root.setLevel(level)
        model = onnx.load(str(out))
    elif precision == "fp16":
        # Float32 in and out, so callers feed and read the same arrays as for fp32.
        model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
    else:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    for prop in model.metadata_props:
        if prop.key == META_PRECISION:
            prop.value = precision
    onnx.save(model, str(out))


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
