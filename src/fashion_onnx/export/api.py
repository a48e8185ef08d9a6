"""``export_onnx``: checkpoint in, verified self-describing ONNX file out (or nothing)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from fashion_onnx.constants import (
    DEFAULT_ATOL,
    DEFAULT_MAX_DROP_POINTS,
    DEFAULT_OPSET,
    IMAGE_SIZE,
)
from fashion_onnx.errors import (
    DataNotFoundError,
    ExportError,
    ExportValidationError,
    InvalidArgumentError,
)
from fashion_onnx.export.calibrate import Calibration, fit_calibration
from fashion_onnx.export.graph import export_graph, finalize, metadata
from fashion_onnx.export.photo_model import photo_path, write_photo_model
from fashion_onnx.export.variants import (
    PRECISIONS,
    SPEED_IMAGES,
    VariantReport,
    choose_int8,
    compare_with_fp32,
    throughputs,
    variant_path,
    write_fp16,
    write_int8,
)
from fashion_onnx.export.verify import (
    Parity,
    compare_with_torch,
    cpu_session,
    run_session,
    structure_problems,
    torch_outputs,
)
from fashion_onnx.fashion_mnist import load_split
from fashion_onnx.fileio import atomic_paths
from fashion_onnx.models import (
    DESCRIPTIONS,
    architecture_name,
    fold_batchnorm,
    load_model,
    load_state_dict_file,
)

RANDOM_IMAGES = 1000  # inputs used when the real test set is not available


@dataclass
class ExportReport:
    architecture: str  # mlp | cnn
    atol: float  # the tolerance the parity was held to
    path: str
    size_bytes: int
    sha256: str
    opset: int
    source_checkpoint: str
    source_sha256: str
    parity: Parity | None  # None when verify=False
    variants: list[VariantReport] = field(default_factory=list)
    calibration: Calibration | None = None  # the temperature, ECE before/after, OOD threshold
    photo: dict[str, object] | None = None  # NAME_photo.onnx: its path and its check (#33)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def verification_inputs(
    data_dir: Path | None, *, use_real_data: bool = True
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The real test set (10,000 images and labels) when available, else seeded random inputs.

    Returns:
        (images float32 (N, 1, 28, 28) in [0, 1], labels or None, a description).
    """
    if use_real_data:
        try:
            from fashion_onnx.train.data import ensure_raw_files, to_input

            root, _ = ensure_raw_files(data_dir, download=False)
            from torchvision.datasets import FashionMNIST

            test = FashionMNIST(str(root), train=False, download=False)
            return (
                to_input(test.data).numpy(),
                test.targets.numpy(),
                "FashionMNIST test set",
            )
        except DataNotFoundError:
            pass
    rng = np.random.default_rng(0)
    images = rng.random((RANDOM_IMAGES, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    return images, None, "random inputs (FashionMNIST not found)"


CALIBRATION_IMAGES = 1024  # training images the static int8 quantizer calibrates on


def calibration_images(data_dir: Path | None) -> np.ndarray | None:
    """A seeded random sample of training images (never test images), float32
    (1024, 1, 28, 28) in [0, 1]; None when the training set is not available."""
    try:
        images, _ = load_split("train", data_dir)
    except DataNotFoundError:
        return None
    pick = np.random.default_rng(0).choice(len(images), CALIBRATION_IMAGES, replace=False)
    return (images[np.sort(pick)].astype(np.float32) / 255).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)


def export_onnx(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    verify: bool = True,
    atol: float | None = None,
    data_dir: Path | None = None,
    use_real_data: bool = True,
    precisions: tuple[str, ...] = (),
    max_drop_points: float | None = None,
    photo: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> ExportReport:
    """Export a checkpoint to one ONNX file and prove it matches torch before it appears.

    Args:
        checkpoint: a .pth state_dict (this package's MLP or CNN, or the PyTorch
            quickstart's MLP); its keys say which architecture it is.
        out: where the fp32 file goes. Variants go beside it (``model.int8.onnx``).
        opset: the ONNX opset to pin.
        verify: compare with torch (structure is always checked).
        atol: the largest allowed |difference| of logits and of probabilities; a top-1
            that differs fails unless torch's top-2 margin is within it. None: the
            architecture's default (``constants.DEFAULT_ATOL``).
        data_dir: where to look for FashionMNIST (see ``fashion_onnx.train.data``).
        use_real_data: False forces random inputs.
        precisions: any of "int8", "fp16", written after the fp32 file passes.
        max_drop_points: a variant losing more test accuracy than this fails. None: the
            architecture's default (0.3 for the MLP, 0.5 for the CNN).
        photo: also write NAME_photo.onnx (``export.photo_model``): the photo preparation
            in the graph, then the fp32 model; verified on photos made from the
            verification images (top-1 as the Python preparation's on >= 99.5%, prepared
            within a grey level) and on those images as 28x28 RGB (the plain model's
            answers within 1e-5).
        on_stage: called with a short description as each stage starts.

    The file's ``calibrated_probabilities`` is softmax(logits / T), T fitted by NLL on
    10,000 training images (never test images; T = 1 without them or with
    ``use_real_data=False``); ``logits`` and ``probabilities`` are unchanged.

    Returns:
        The report: file facts, parity figures, and one entry per variant.

    Raises:
        CheckpointError: the checkpoint is unreadable, unsafe or not this model.
        ExportValidationError: a file failed a check (structure, parity with torch of all
            three outputs, a variant's accuracy drop); it lists every failure.
        ExportError: a file could not be written (a directory in the way, a full disk).
        InvalidArgumentError: an unknown precision, a negative drop, out == checkpoint.

    Nothing is published unless everything passed: on any error no new file (and no
    temporary file) remains at ``out`` or beside it.

    Warns:
        UserWarning: a variant's accuracy drop could not be checked (no labelled data).
    """
    say = on_stage or (lambda _stage: None)
    checkpoint, out = Path(checkpoint), Path(out)
    unknown = set(precisions) - set(PRECISIONS)
    if unknown:
        raise InvalidArgumentError(
            f"unknown precision(s) {sorted(unknown)}; choose from {', '.join(PRECISIONS)}"
        )
    if max_drop_points is not None and max_drop_points < 0:
        raise InvalidArgumentError(f"max_drop_points must be >= 0, got {max_drop_points}")
    if out.resolve() == checkpoint.resolve():
        # An ONNX file given as the input (``fashion-export model.onnx``) lands here, as its
        # default output is itself: say what it is rather than what the output would be.
        load_state_dict_file(checkpoint)
        raise InvalidArgumentError(f"output {out} is the input checkpoint; choose another path")
    dests = [out, *(variant_path(out, p) for p in precisions)]
    if photo:
        dests.append(photo_path(out))
    for dest in dests:
        if dest.is_dir():
            raise ExportError(f"cannot write {dest}: it is a directory")

    say(f"loading {checkpoint}")
    model = load_model(checkpoint)
    arch = architecture_name(model)
    atol = DEFAULT_ATOL[arch] if atol is None else atol
    max_drop = DEFAULT_MAX_DROP_POINTS[arch] if max_drop_points is None else max_drop_points
    source_sha = sha256_file(checkpoint)
    images, labels, data = verification_inputs(data_dir, use_real_data=use_real_data)
    expected = torch_outputs(model, images)  # the oracle, computed once
    test_accuracy = None
    if labels is not None:
        test_accuracy = float((expected[0].argmax(1) == labels).mean())

    say("fitting the temperature on training images")
    calibration = fit_calibration(
        model,
        data_dir,
        expected[0] if labels is not None else None,
        labels,
        use_training=use_real_data,
    )
    # Every file is written and verified under a temporary name first; they appear
    # together only when all of them passed, so a failure leaves nothing new behind.
    try:
        with atomic_paths(dests, suffix=".onnx") as (tmp, *more):
            variant_tmps = more[: len(precisions)]
            parity = _write_fp32(
                fold_batchnorm(model),  # the graph has no BatchNorm; the oracle is ``model``
                tmp,
                opset,
                say,
                expected,
                images,
                labels,
                data,
                atol,
                verify,
                metadata(
                    architecture=DESCRIPTIONS[arch],
                    source_sha256=source_sha,
                    opset=opset,
                    precision="fp32",
                    test_accuracy=test_accuracy,
                    calibration=calibration,
                ),
                calibration.temperature,
            )
            variants = _write_variants(
                tmp,
                dict(zip(precisions, variant_tmps, strict=True)),
                images,
                labels,
                max_drop,
                say,
                calibration_images(data_dir) if "int8" in precisions and use_real_data else None,
            )
            photo_check = None
            if photo:
                say("building the photo model and checking it against the Python preparation")
                pixels = np.round(images[:, 0] * 255).astype(np.uint8)
                photo_check = write_photo_model(tmp, more[-1], pixels).to_dict()
    except OSError as exc:
        raise ExportError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from exc
    return ExportReport(
        architecture=arch,
        atol=atol,
        path=str(out),
        size_bytes=out.stat().st_size,
        sha256=sha256_file(out),
        opset=opset,
        source_checkpoint=str(checkpoint),
        source_sha256=source_sha,
        parity=parity,
        calibration=calibration,
        variants=[
            dataclasses.replace(v, path=str(variant_path(out, v.precision))) for v in variants
        ],
        photo=None if photo_check is None else {"path": str(photo_path(out)), **photo_check},
    )


def _write_fp32(
    model: torch.nn.Module,
    path: Path,
    opset: int,
    say: Callable[[str], None],
    expected: tuple[np.ndarray, np.ndarray],
    images: np.ndarray,
    labels: np.ndarray | None,
    data: str,
    atol: float,
    verify: bool,
    props: dict[str, str],
    temperature: float,
) -> Parity | None:
    """Export ``model``, stamp the metadata, check the structure, then the values against
    the torch oracle's outputs (``expected``)."""
    say(f"exporting with torch.onnx (dynamo, opset {opset})")
    try:
        export_graph(model, path, opset, temperature)
    except Exception as exc:  # the exporter raises many kinds; report them as one
        raise ExportValidationError([f"torch.onnx.export failed: {exc}"]) from exc
    proto = onnx.load(str(path))
    finalize(proto, props)
    onnx.save(proto, str(path))
    say("checking the graph (onnx checker, shape inference, signature)")
    problems = structure_problems(path)
    if problems:
        raise ExportValidationError(problems)
    if not verify:
        return None
    say(f"comparing with torch on {len(images)} images ({data})")
    parity, problems = compare_with_torch(
        expected, path, images, labels, data=data, atol=atol, temperature=temperature
    )
    if problems:
        raise ExportValidationError(problems)
    return parity


def _write_variants(
    fp32: Path,
    paths: dict[str, Path],
    images: np.ndarray,
    labels: np.ndarray | None,
    max_drop_points: float,
    say: Callable[[str], None],
    calibration: np.ndarray | None,
) -> list[VariantReport]:
    """Write each precision's copy and score it against the fp32 file; fail on a drop."""
    if not paths:
        return []
    _, fp32_probs = run_session(cpu_session(fp32), images, 1024)
    reports = []
    for precision, path in paths.items():
        say(f"writing the {precision} copy and scoring it against fp32")
        if precision == "int8":
            variant = _best_int8(
                fp32, path, images, labels, fp32_probs, max_drop_points, calibration
            )
        else:
            write_fp16(fp32, path)
            variant = compare_with_fp32(path, precision, images, labels, fp32_probs)
        if variant.accuracy_delta_points is None:
            warnings.warn(
                f"{precision}: the accuracy drop was not checked (no labelled test data, "
                f"so max_drop_points={max_drop_points:g} could not apply); top-1 agreement "
                f"with fp32 on the inputs used: {100 * variant.argmax_agreement:.2f}%",
                stacklevel=3,
            )
        elif -variant.accuracy_delta_points > max_drop_points:
            raise ExportValidationError(
                [
                    f"{precision}: test accuracy drops {-variant.accuracy_delta_points:.2f} "
                    f"points > {max_drop_points:g}"
                ]
            )
        reports.append(variant)
    return reports


def _best_int8(
    fp32: Path,
    path: Path,
    images: np.ndarray,
    labels: np.ndarray | None,
    fp32_probs: np.ndarray,
    max_drop_points: float,
    calibration: np.ndarray | None,
) -> VariantReport:
    """Write both int8 candidates, score and time them, keep the faster one that stays
    within the accuracy bound (or the more accurate, when none does) at ``path``."""
    methods = ["dynamic", *(["static"] if calibration is not None else [])]
    with tempfile.TemporaryDirectory(prefix="fashion-onnx-int8-") as scratch:
        files = {m: Path(scratch) / f"{m}.onnx" for m in methods}
        scores = {}
        for method, file in files.items():
            write_int8(fp32, file, method, calibration)
            scores[method] = compare_with_fp32(file, "int8", images, labels, fp32_probs)
        speed = throughputs({"fp32": fp32, **files}, images[:SPEED_IMAGES])

        def drop(method: str) -> float:
            delta = scores[method].accuracy_delta_points
            return 0.0 if delta is None else -delta

        best, within = choose_int8(
            {m: drop(m) for m in methods}, {m: speed[m] for m in methods}, max_drop_points
        )
        candidates: list[dict[str, object]] = [
            {
                "method": m,
                "accuracy_delta_points": scores[m].accuracy_delta_points,
                "speedup_batch64": speed[m] / speed["fp32"],
                "size_bytes": files[m].stat().st_size,
            }
            for m in methods
        ]
        why = "; ".join(
            f"{c['method']}: {c['speedup_batch64']:.2f}x fp32 at batch 64, "
            + (
                "accuracy n/a"
                if c["accuracy_delta_points"] is None
                else f"{c['accuracy_delta_points']:+.2f} points"
            )
            for c in candidates
        )
        if calibration is None:
            why += " (static not tried: no training images to calibrate on)"
        reason = (
            f"{best}: the faster within {max_drop_points:g} points ({why})"
            if within
            else f"{best}: the smaller drop, neither within {max_drop_points:g} points ({why})"
        )
        shutil.copyfile(files[best], path)
    return dataclasses.replace(
        scores[best],
        path=str(path),
        method=best,
        speedup_batch64=speed[best] / speed["fp32"],
        candidates=candidates,
        choice=reason,
    )
