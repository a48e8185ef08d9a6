"""torch -> ONNX: the graph with three outputs, a dynamic batch axis, self-describing metadata."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

import fashion_onnx
from fashion_onnx.constants import (
    CLASS_NAMES,
    DEFAULT_BACKGROUND,
    DEFAULT_INPUT_SCALE,
    EXPORTED_OUTPUTS,
    IMAGE_SIZE,
    INPUT_NAME,
    META_ARCHITECTURE,
    META_BACKGROUND,
    META_CALIBRATION,
    META_CLASS_NAMES,
    META_INPUT_LAYOUT,
    META_INPUT_SCALE,
    META_INPUT_SHAPE,
    META_OOD_THRESHOLD,
    META_OPSET,
    META_PACKAGE_VERSION,
    META_PRECISION,
    META_SOURCE_SHA256,
    META_TEMPERATURE,
    META_TEST_ACCURACY,
    META_TORCH_VERSION,
)
from fashion_onnx.export.calibrate import Calibration


class WithProbabilities(nn.Module):
    """Wrap a logits model so the graph also returns the softmax, exact and calibrated:
    embedders need no math. ``probabilities`` stays torch's softmax of the logits."""

    def __init__(self, model: nn.Module, temperature: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.model(x)  # (N, 10)
        calibrated = torch.softmax(logits / self.temperature, dim=1)
        return logits, torch.softmax(logits, dim=1), calibrated  # all (N, 10)


def export_graph(model: nn.Module, path: Path, opset: int, temperature: float = 1.0) -> None:
    """Write ``model`` (eval mode) as ONNX to ``path``: one file, batch axis dynamic."""
    # An example batch of 1 would let the exporter fix the axis at 1.
    example = torch.rand(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    batch = torch.export.Dim("N", min=1, max=1 << 30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter; failures still raise
        torch.onnx.export(
            WithProbabilities(model.eval(), temperature),
            (example,),
            str(path),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=list(EXPORTED_OUTPUTS),
            opset_version=opset,
            dynamic_shapes=({0: batch},),
            external_data=False,
            verbose=False,
        )


def metadata(
    *,
    architecture: str,
    source_sha256: str,
    opset: int,
    precision: str,
    test_accuracy: float | None,
    calibration: Calibration | None = None,
) -> dict[str, str]:
    """The metadata_props every exported file carries (all values are strings)."""
    props = {
        META_CLASS_NAMES: json.dumps(list(CLASS_NAMES)),
        META_INPUT_LAYOUT: "NCHW",
        META_INPUT_SHAPE: json.dumps(["N", 1, IMAGE_SIZE, IMAGE_SIZE]),
        META_INPUT_SCALE: DEFAULT_INPUT_SCALE,
        META_BACKGROUND: DEFAULT_BACKGROUND,
        META_ARCHITECTURE: architecture,
        META_SOURCE_SHA256: source_sha256,
        META_PACKAGE_VERSION: fashion_onnx.__version__,
        META_TORCH_VERSION: torch.__version__,
        META_OPSET: str(opset),
        META_PRECISION: precision,
    }
    if test_accuracy is not None:
        props[META_TEST_ACCURACY] = f"{test_accuracy:.4f}"
    if calibration is not None:
        props[META_TEMPERATURE] = repr(calibration.temperature)
        props[META_CALIBRATION] = calibration.metadata()
        if calibration.ood_threshold is not None:
            props[META_OOD_THRESHOLD] = repr(calibration.ood_threshold)
    return props


def finalize(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Set the metadata and producer, and drop value_info that merely repeats initializers.

    The exporter records each weight's shape as value_info too; onnxruntime's quantizer
    transposes Gemm weights and then trips over those stale shapes.
    """
    weights = {init.name for init in model.graph.initializer}
    kept = [vi for vi in model.graph.value_info if vi.name not in weights]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "fashion-onnx"
    model.producer_version = fashion_onnx.__version__
    model.doc_string = (
        f"FashionMNIST classifier: {props.get(META_ARCHITECTURE, '')}. Input 'input' float32 "
        "[N,1,28,28] in [0,1], light garment on dark background. Outputs 'logits', "
        "'probabilities' and 'calibrated_probabilities' (softmax(logits / temperature)) "
        "[N,10]; class names and temperature in metadata."
    )
