"""``evaluate``: run a model on labelled data and measure how far to trust it.

Accuracy, per-class precision and recall, the confusion matrix, calibration (ECE, 15
bins, of the exact and the calibrated probabilities), the int8/fp16 copies beside the
model, latency and throughput, and the separation of OOD sets. Torch-free.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fashion_onnx.errors import DataNotFoundError, DeviceError
from fashion_onnx.eval import ood_sets
from fashion_onnx.eval.data import Labelled
from fashion_onnx.eval.measures import (
    DEFAULT_KEEP,
    OOD_SCORES,
    Reliability,
    Separation,
    confusion_matrix,
    ood_score,
    precision_recall,
    reliability,
    separation,
    softmax,
    threshold_keeping,
    top_k_accuracy,
)
from fashion_onnx.infer.classifier import Classifier
from fashion_onnx.infer.contract import EMBEDDED, default_model_path
from fashion_onnx.infer.runner import ModelRunner

PRECISIONS = ("int8", "fp16")
LATENCY_RUNS = 300  # batch-1 calls timed for p50/p99
THROUGHPUT_BATCH = 1024


@dataclass(frozen=True)
class Variant:
    precision: str
    path: str
    accuracy: float
    agreement: float  # top-1 agreement with the fp32 model


@dataclass(frozen=True)
class Speed:
    device: str  # cpu | cuda
    provider: str
    p50_ms: float  # batch 1
    p99_ms: float
    images_per_s: float  # batch 1,024


@dataclass(frozen=True)
class OodReport:
    """How well each score separates each OOD set from the evaluated (in-distribution) data."""

    chosen: str  # the score the rows use (energy)
    threshold: float  # of the chosen score; rows above it abstain
    threshold_source: str  # the model's metadata, or measured here
    kept: float  # share of the in-distribution data at or below the threshold
    sets: dict[str, list[Separation]]  # score -> one per OOD set
    skipped: dict[str, str] = field(default_factory=dict)  # OOD set -> why


@dataclass(frozen=True)
class EvalReport:
    model: str
    data: str
    images: int
    top1: float
    top2: float
    class_names: tuple[str, ...]
    precision: list[float]
    recall: list[float]
    confusion: list[list[int]]
    ece_bins: int
    ece_probabilities: float  # softmax(logits): the file's exact probabilities
    ece_calibrated: float  # what the rows report (calibrated_probabilities when present)
    temperature: float | None  # from the metadata, when present
    reliability: dict[str, dict[str, list[float]]]  # "probabilities"/"calibrated" -> bins
    variants: list[Variant]
    speed: list[Speed]
    ood: OodReport | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _bins(r: Reliability) -> dict[str, list[float]]:
    return {
        "counts": r.counts.astype(float).tolist(),
        "confidence": np.nan_to_num(r.confidence, nan=-1).tolist(),
        "accuracy": np.nan_to_num(r.accuracy, nan=-1).tolist(),
    }


def model_path(model: str) -> Path:
    """An embedded name or a path -> the file (variants are looked for beside it)."""
    return default_model_path(model) if model.lower() in EMBEDDED else Path(model)


def predict(clf: Classifier, data: Labelled) -> tuple[np.ndarray, np.ndarray | None]:
    """(reported probabilities, logits or None) for ``data``, as fashion-infer would see it."""
    if data.images is not None:
        p = clf.predict(data.images)
    else:
        p = clf.predict(list(data.paths))
    return p.probabilities, p.logits


def variants(path: Path, data: Labelled, fp32_top1: np.ndarray) -> list[Variant]:
    """Each int8/fp16 copy beside ``path`` (``model.int8.onnx``): accuracy, agreement."""
    found = []
    for precision in PRECISIONS:
        copy = path.with_name(f"{path.stem}.{precision}{path.suffix}")
        if copy.is_file():
            probs, _ = predict(Classifier(copy, device="cpu", invert="never"), data)
            top1 = probs.argmax(1)
            found.append(
                Variant(
                    precision,
                    str(copy),
                    float((top1 == data.labels).mean()),
                    float((top1 == fp32_top1).mean()),
                )
            )
    return found


def speed(model_bytes: bytes, source: str, device: str, images: np.ndarray) -> Speed:
    """Batch-1 latency (p50, p99 of 300 calls) and batch-1,024 throughput on ``device``.

    Raises:
        DeviceError: the device is not usable.
    """
    runner = ModelRunner(model_bytes, source, device=device, batch_size=THROUGHPUT_BATCH)
    one = images[:1]
    for _ in range(20):
        runner.predict_pixels(one)
    times = []
    for n in range(LATENCY_RUNS):
        x = images[n % len(images) : n % len(images) + 1]
        start = time.perf_counter()
        runner.predict_pixels(x)
        times.append(time.perf_counter() - start)
    batch = np.resize(images, (THROUGHPUT_BATCH, *images.shape[1:]))
    runner.predict_pixels(batch)
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        runner.predict_pixels(batch)
        rates.append(THROUGHPUT_BATCH / (time.perf_counter() - start))
    ms = np.array(times) * 1000
    return Speed(
        device,
        runner.provider,
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
        statistics.median(rates),
    )


def ood(
    clf: Classifier,
    in_logits: np.ndarray | None,
    in_probs: np.ndarray,
    test_images: np.ndarray | None,
    names: tuple[str, ...] = ood_sets.OOD_SETS,
) -> OodReport | None:
    """Separation of each OOD set from the evaluated data, by energy and by MSP."""
    if in_logits is None:
        return None
    images = test_images if test_images is not None else np.zeros((0, 28, 28), np.uint8)
    meta = clf.runner.contract.ood_threshold
    in_scores = {k: ood_score(k, in_logits, in_probs) for k in OOD_SCORES}
    thresholds = {k: threshold_keeping(in_scores[k], DEFAULT_KEEP) for k in OOD_SCORES}
    source = f"measured here to keep {DEFAULT_KEEP:.0%} of the data"
    if meta is not None:
        thresholds["energy"], source = meta, "the model's metadata (ood_threshold)"
    sets: dict[str, list[Separation]] = {k: [] for k in OOD_SCORES}
    skipped: dict[str, str] = {}
    for name in names:
        if name == "inverted" and not len(images):
            skipped[name] = "needs the evaluated data as arrays"
            continue
        try:
            x = ood_sets.build(name, images)
        except DataNotFoundError as exc:
            skipped[name] = str(exc)
            continue
        p = clf.predict(x)  # arrays as they are: invert="never" (the model's own view)
        for k in OOD_SCORES:
            out = ood_score(k, p.logits, p.probabilities)
            sets[k].append(separation(name, in_scores[k], out, thresholds[k]))
    kept = float((in_scores["energy"] <= thresholds["energy"]).mean())
    return OodReport("energy", thresholds["energy"], source, kept, sets, skipped)


def evaluate(
    model: str,
    data: Labelled,
    *,
    measure_speed: bool = True,
    measure_ood: bool = True,
    cuda: bool = True,
) -> EvalReport:
    """Evaluate ``model`` (an embedded name or an ONNX path) on ``data``.

    Args:
        model: "mlp", "cnn" or a path; int8/fp16 copies beside a path are scored too.
        data: what to evaluate on (``eval.data.load``).
        measure_speed: time batch 1 and batch 1,024 on the CPU (and CUDA where usable).
        measure_ood: score the OOD sets against ``data``.
        cuda: also time CUDA when it is usable.

    Raises:
        ModelError: the model is unreadable or not the contract's.
        ImageError: a file of a folder could not be read.
    """
    path = model_path(model)
    clf = Classifier(model, device="cpu", invert="never" if data.images is not None else "auto")
    probs, logits = predict(clf, data)
    exact = softmax(logits) if logits is not None else probs
    labels = data.labels
    top1 = probs.argmax(1)
    matrix = confusion_matrix(top1, labels, len(clf.class_names))
    precision, recall = precision_recall(matrix)
    before, after = reliability(exact, labels), reliability(probs, labels)
    speeds = []
    if measure_speed:
        sample = data.images if data.images is not None else _prepared(clf, data)
        devices = ["cpu", *(["cuda"] if cuda and _cuda_usable() else [])]
        for device in devices:
            try:
                speeds.append(speed(clf.model_bytes, clf.source, device, sample))
            except DeviceError:
                continue
    return EvalReport(
        model=str(path) if model.lower() not in EMBEDDED else f"{model.lower()} ({path.name})",
        data=data.name,
        images=len(labels),
        top1=top_k_accuracy(probs, labels, 1),
        top2=top_k_accuracy(probs, labels, 2),
        class_names=clf.class_names,
        precision=np.nan_to_num(precision, nan=0.0).tolist(),
        recall=np.nan_to_num(recall, nan=0.0).tolist(),
        confusion=matrix.tolist(),
        ece_bins=len(after.counts),
        ece_probabilities=before.ece,
        ece_calibrated=after.ece,
        temperature=clf.runner.contract.temperature,
        reliability={"probabilities": _bins(before), "calibrated": _bins(after)},
        variants=variants(path, data, top1) if path.is_file() else [],
        speed=speeds,
        ood=ood(clf, logits, probs, data.images) if measure_ood else None,
    )


def _prepared(clf: Classifier, data: Labelled) -> np.ndarray:
    from fashion_onnx.infer.images import load_image

    return np.stack([load_image(p, clf.preparation) for p in data.paths[:64]])


def _cuda_usable() -> bool:
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return False
    from fashion_onnx.infer.runtime import cuda_problem

    return cuda_problem() is None
