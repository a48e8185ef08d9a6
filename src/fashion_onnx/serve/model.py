"""A model as the server holds it: the package's one model runner (``ModelRunner``, the
session and contract ``fashion-infer`` uses), the v2 metadata it is described by, and the
two ways rows reach it (model input tensors, or encoded image files prepared as
``fashion-infer`` does)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.infer.contract import PROBABILITIES, ModelContract, read_model
from fashion_onnx.infer.decode import decode_chunk
from fashion_onnx.infer.prepare import Preparation
from fashion_onnx.infer.runner import ModelRunner

INPUT_SHAPE = (1, IMAGE_SIZE, IMAGE_SIZE)
IMAGE_INPUT = "image"  # the BYTES input: encoded image files, one per element


@dataclass
class ServedModel:
    """One model. ``run`` is what the batcher calls: model input rows -> every output,
    row-aligned."""

    name: str
    runner: ModelRunner
    outputs: tuple[str, ...] = field(init=False)  # the file's, plus "probabilities" if absent

    def __post_init__(self) -> None:
        self.outputs = self.runner.outputs()

    @classmethod
    def load(
        cls, name: str, model: str | bytes | None, *, device: str, threads: int | None
    ) -> ServedModel:
        """Read and check a model (embedded name, path or bytes).

        Raises:
            ModelError: unreadable, or not the contract's signature.
            DeviceError: the device is not usable.
        """
        data, source = read_model(model)
        return cls(name, ModelRunner(data, source, device=device, threads=threads, spinning=False))

    @property
    def source(self) -> str:
        return self.runner.source

    @property
    def contract(self) -> ModelContract:
        return self.runner.contract

    @property
    def provider(self) -> str:
        return self.runner.provider

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """float32 (n, 1, 28, 28) model input -> {output name: (n, 10) float32}, for every
        one of ``outputs`` (a model whose batch axis is fixed is fed padded batches; on CUDA
        each of the batching threads has its own IO binding)."""
        return self.runner.run_outputs(x)

    def reported(self, out: dict[str, np.ndarray]) -> np.ndarray:
        """Of ``run``'s outputs, the probabilities ``fashion-infer`` and ``Classifier``
        report: the calibrated ones where the file has them (the v2 routes return each
        output by its name)."""
        return out[PROBABILITIES if self.contract.softmax else self.contract.output_name]

    def model_input(self, images: np.ndarray) -> np.ndarray:
        """uint8 (n, 28, 28) images, light garment on dark -> this model's input rows."""
        return self.contract.model_input(images)

    def decode(
        self, files: Sequence[bytes], preparation: Preparation
    ) -> tuple[np.ndarray, list[str | None]]:
        """(images (k, 28, 28) uint8 of the files that decoded, per file its error or None):
        decoded and prepared exactly as ``fashion-infer`` does, a bad file costing only itself."""
        decoded = decode_chunk(list(files), preparation)
        return decoded.images, decoded.errors

    def metadata(self) -> dict[str, Any]:
        """The v2 model metadata (``GET /v2/models/{name}``)."""
        tensor = [-1, *INPUT_SHAPE]
        return {
            "name": self.name,
            "versions": ["1"],
            "platform": "onnxruntime_onnx",
            "inputs": [
                {"name": self.contract.input_name, "datatype": "FP32", "shape": tensor},
                {"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [-1]},
            ],
            "outputs": [
                {"name": o, "datatype": "FP32", "shape": [-1, len(self.contract.class_names)]}
                for o in self.outputs
            ],
            "parameters": {
                "class_names": list(self.contract.class_names),
                "input_scale": {"divide_by": self.contract.divide_by},
                "background": self.contract.background,
                "one_input_of": [self.contract.input_name, IMAGE_INPUT],
            },
        }
