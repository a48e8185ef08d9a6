"""Prove an ONNX file reproduces torch: structure first, then values at several batch sizes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from fashion_onnx.constants import (
    CALIBRATED_NAME,
    EXPORTED_OUTPUTS,
    IMAGE_SIZE,
    INPUT_NAME,
    LOGITS_RTOL,
    NUM_CLASSES,
    OUTPUT_NAMES,
)

VERIFY_BATCH_SIZES = (1, 2, 7, 64)  # plus the whole set in one batch


@dataclass(frozen=True)
class Parity:
    """How closely ONNX Runtime's outputs matched torch's on the same inputs."""

    data: str  # what the inputs were, e.g. "FashionMNIST test set"
    images: int
    batch_sizes: tuple[int, ...]
    max_abs_logits: float  # worst over all batch sizes
    max_abs_probabilities: float
    argmax_agreement: float  # fraction of images with the same top-1 at every batch size
    torch_accuracy: float | None  # against the true labels, when there are labels
    onnx_accuracy: float | None
    # calibrated_probabilities against torch's softmax(logits / T), worst over batch sizes
    max_abs_calibrated: float | None = None


def structure_problems(path: Path) -> list[str]:
    """Run onnx's full checker and strict shape inference, then check the signature."""
    problems: list[str] = []
    try:
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        return [f"onnx checker: {exc}"]

    def shape(value_info: onnx.ValueInfoProto) -> list[object]:
        dims = value_info.type.tensor_type.shape.dim
        return [d.dim_param or d.dim_value for d in dims]

    inputs = [i for i in model.graph.input]
    if [i.name for i in inputs] != [INPUT_NAME]:
        problems.append(f"inputs are {[i.name for i in inputs]}, expected [{INPUT_NAME!r}]")
    else:
        found = shape(inputs[0])
        if len(found) != 4 or found[1:] != [1, IMAGE_SIZE, IMAGE_SIZE] or isinstance(found[0], int):
            problems.append(f"input shape is {found}, expected [N, 1, 28, 28] with N dynamic")
    names = [o.name for o in model.graph.output]
    if names != list(EXPORTED_OUTPUTS):
        problems.append(f"outputs are {names}, expected {list(EXPORTED_OUTPUTS)}")
    for output in model.graph.output:
        found = shape(output)
        if len(found) != 2 or found[1] != NUM_CLASSES or isinstance(found[0], int):
            problems.append(f"output {output.name!r} has shape {found}, expected [N, 10]")
    return problems


def cpu_session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_session(
    session: ort.InferenceSession,
    images: np.ndarray,
    batch_size: int,
    names: tuple[str, ...] = OUTPUT_NAMES,
) -> tuple[np.ndarray, ...]:
    """The outputs ``names`` (by default logits and probabilities) for float32 ``images``
    (N, 1, 28, 28), ``batch_size`` at a time: one array per name, in that order."""
    parts: list[list[np.ndarray]] = [[] for _ in names]
    for start in range(0, len(images), batch_size):
        out = session.run(list(names), {INPUT_NAME: images[start : start + batch_size]})
        for part, array in zip(parts, out, strict=True):
            part.append(array)
    return tuple(np.concatenate(part) for part in parts)


@torch.inference_mode()
def torch_calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    """The oracle of ``calibrated_probabilities``: torch's softmax(logits / T), float32."""
    return torch.softmax(torch.from_numpy(logits) / temperature, dim=1).numpy()


@torch.inference_mode()
def torch_outputs(model: nn.Module, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The oracle: (logits, softmax) from torch in float32, one batch."""
    logits = model.eval()(torch.from_numpy(images))
    return logits.numpy(), torch.softmax(logits, dim=1).numpy()


def accuracy(scores: np.ndarray, labels: np.ndarray | None) -> float | None:
    return None if labels is None else float((scores.argmax(1) == labels).mean())


def compare_with_torch(
    expected: tuple[np.ndarray, np.ndarray],
    path: Path,
    images: np.ndarray,
    labels: np.ndarray | None,
    *,
    data: str,
    atol: float,
    temperature: float = 1.0,
) -> tuple[Parity, list[str]]:
    """Run the file at batch sizes 1, 2, 7, 64 and all-at-once against torch's outputs.

    Args:
        expected: torch's (logits, probabilities) for ``images`` (``torch_outputs``).
        temperature: the T of ``calibrated_probabilities``, held to the same ``atol``.

    Returns:
        The parity figures and the list of every failure (empty when it passes):
        probabilities off by more than ``atol``, logits by more than ``atol`` +
        ``LOGITS_RTOL`` x their size, or any top-1 that differs.
    """
    expected_logits, expected_probs = expected
    session = cpu_session(path)
    batch_sizes = (*VERIFY_BATCH_SIZES, len(images))
    problems: list[str] = []
    worst_logits = worst_probs = worst_calibrated = 0.0
    expected_calibrated = torch_calibrated(expected_logits, temperature)
    agree = np.ones(len(images), dtype=bool)
    onnx_logits = expected_logits
    for batch_size in batch_sizes:
        # One run per batch for all three outputs, as a user's run would fetch them.
        onnx_logits, onnx_probs, onnx_calibrated = run_session(
            session, images, batch_size, (*OUTPUT_NAMES, CALIBRATED_NAME)
        )
        if onnx_logits.shape != expected_logits.shape or onnx_probs.shape != expected_probs.shape:
            problems.append(
                f"batch {batch_size}: output shapes {onnx_logits.shape}/{onnx_probs.shape}, "
                f"expected {expected_logits.shape}"
            )
            continue
        logits_diff = np.abs(onnx_logits - expected_logits)
        d_logits = float(logits_diff.max())
        d_probs = float(np.abs(onnx_probs - expected_probs).max())
        worst_logits, worst_probs = max(worst_logits, d_logits), max(worst_probs, d_probs)
        same = onnx_logits.argmax(1) == expected_logits.argmax(1)
        agree &= same
        # A top-1 may flip only where torch itself is undecided: its top-2 margin <= atol.
        top2 = np.sort(expected_logits, axis=1)[:, -2:]
        decided = (top2[:, 1] - top2[:, 0]) > atol
        bound = atol + LOGITS_RTOL * np.abs(expected_logits)
        if (logits_diff > bound).any():
            problems.append(
                f"batch {batch_size}: logits max|diff| {d_logits:.3g} > atol {atol:g} + "
                f"{LOGITS_RTOL:g} x |logit|"
            )
        if d_probs > atol:
            problems.append(
                f"batch {batch_size}: probabilities max|diff| {d_probs:.3g} > atol {atol:g}"
            )
        d_cal = float(np.abs(onnx_calibrated - expected_calibrated).max())
        worst_calibrated = max(worst_calibrated, d_cal)
        if d_cal > atol:
            problems.append(
                f"batch {batch_size}: {CALIBRATED_NAME} max|diff| {d_cal:.3g} > atol {atol:g}"
            )
        if not (same | ~decided).all():
            flipped = int((~same & decided).sum())
            problems.append(
                f"batch {batch_size}: top-1 differs on {flipped} image(s) where torch's top-2 "
                f"margin exceeds atol {atol:g}"
            )
    parity = Parity(
        data=data,
        images=len(images),
        batch_sizes=batch_sizes,
        max_abs_logits=worst_logits,
        max_abs_probabilities=worst_probs,
        argmax_agreement=float(agree.mean()),
        torch_accuracy=accuracy(expected_logits, labels),
        onnx_accuracy=accuracy(onnx_logits, labels),
        max_abs_calibrated=worst_calibrated,
    )
    return parity, problems
