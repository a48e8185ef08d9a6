"""``export_onnx``: checkpoint in, verified self-describing ONNX file out (or nothing)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from fashion_onnx.constants import DEFAULT_OPSET, IMAGE_SIZE
from fashion_onnx.errors import DataNotFoundError, ExportValidationError, FashionOnnxError
from fashion_onnx.export.graph import export_graph, finalize, metadata
from fashion_onnx.export.variants import (
    PRECISIONS,
    VariantReport,
    compare_with_fp32,
    variant_path,
    write_variant,
)
from fashion_onnx.export.verify import (
    Parity,
    compare_with_torch,
    cpu_session,
    run_session,
    structure_problems,
    torch_outputs,
)
from fashion_onnx.fileio import atomic_path
from fashion_onnx.models import load_model

DEFAULT_ATOL = 1e-5
DEFAULT_MAX_DROP_POINTS = 0.3  # a variant may lose at most this much test accuracy
RANDOM_IMAGES = 1000  # inputs used when the real test set is not available


@dataclass
class ExportReport:
    path: str
    size_bytes: int
    sha256: str
    opset: int
    source_checkpoint: str
    source_sha256: str
    parity: Parity | None  # None when verify=False
    variants: list[VariantReport] = field(default_factory=list)

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


def export_onnx(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    verify: bool = True,
    atol: float = DEFAULT_ATOL,
    data_dir: Path | None = None,
    use_real_data: bool = True,
    precisions: tuple[str, ...] = (),
    max_drop_points: float = DEFAULT_MAX_DROP_POINTS,
    on_stage: Callable[[str], None] | None = None,
) -> ExportReport:
    """Export a checkpoint to one ONNX file and prove it matches torch before it appears.

    Args:
        checkpoint: a .pth state_dict (this package's or the PyTorch quickstart's).
        out: where the fp32 file goes. Variants go beside it (``model.int8.onnx``).
        opset: the ONNX opset to pin.
        verify: compare with torch (structure is always checked).
        atol: the largest allowed |difference| of logits and of probabilities.
        data_dir: where to look for FashionMNIST (see ``fashion_onnx.train.data``).
        use_real_data: False forces random inputs.
        precisions: any of "int8", "fp16", written after the fp32 file passes.
        max_drop_points: a variant losing more test accuracy than this fails.
        on_stage: called with a short description as each stage starts.

    Returns:
        The report: file facts, parity figures, and one entry per variant.

    Raises:
        CheckpointError: the checkpoint is unreadable, unsafe or not this model.
        ExportValidationError: the file failed a check; it lists every failure and no
            file is left at ``out`` (or at the failing variant's path).
    """
    say = on_stage or (lambda _stage: None)
    checkpoint, out = Path(checkpoint), Path(out)
    unknown = set(precisions) - set(PRECISIONS)
    if unknown:
        raise FashionOnnxError(f"unknown precision(s) {sorted(unknown)}; choose from {PRECISIONS}")
    if out.resolve() == checkpoint.resolve():
        raise FashionOnnxError(f"output {out} is the input checkpoint; choose another path")
    if out.is_dir():
        raise FashionOnnxError(f"output {out} is a directory; give a file path like model.onnx")

    say(f"loading {checkpoint}")
    model = load_model(checkpoint)
    source_sha = sha256_file(checkpoint)
    images, labels, data = verification_inputs(data_dir, use_real_data=use_real_data)
    expected = torch_outputs(model, images)  # the oracle, computed once
    test_accuracy = None
    if labels is not None:
        test_accuracy = float((expected[0].argmax(1) == labels).mean())

    parity = None
    with atomic_path(out, suffix=".onnx") as tmp:
        say(f"exporting with torch.onnx (dynamo, opset {opset})")
        try:
            export_graph(model, tmp, opset)
        except Exception as exc:  # the exporter raises many kinds; report them as one
            raise ExportValidationError([f"torch.onnx.export failed: {exc}"]) from exc
        proto = onnx.load(str(tmp))
        finalize(
            proto,
            metadata(
                source_sha256=source_sha, opset=opset, precision="fp32", test_accuracy=test_accuracy
            ),
        )
        onnx.save(proto, str(tmp))
        say("checking the graph (onnx checker, shape inference, signature)")
        problems = structure_problems(tmp)
        if problems:
            raise ExportValidationError(problems)
        if verify:
            say(f"comparing with torch on {len(images)} images ({data})")
            parity, problems = compare_with_torch(
                expected, tmp, images, labels, data=data, atol=atol
            )
            if problems:
                raise ExportValidationError(problems)

    report = ExportReport(
        path=str(out),
        size_bytes=out.stat().st_size,
        sha256=sha256_file(out),
        opset=opset,
        source_checkpoint=str(checkpoint),
        source_sha256=source_sha,
        parity=parity,
    )
    if precisions:
        _, fp32_probs = run_session(cpu_session(out), images, 1024)
    for precision in precisions:
        dest = variant_path(out, precision)
        with atomic_path(dest, suffix=".onnx") as tmp:
            say(f"writing the {precision} copy and scoring it against fp32")
            write_variant(out, tmp, precision)
            variant = compare_with_fp32(tmp, precision, images, labels, fp32_probs)
            drop = -(variant.accuracy_delta_points or 0.0)
            if drop > max_drop_points:
                raise ExportValidationError(
                    [f"{precision}: test accuracy drops {drop:.2f} points > {max_drop_points:g}"]
                )
        report.variants.append(dataclasses.replace(variant, path=str(dest)))
    return report
