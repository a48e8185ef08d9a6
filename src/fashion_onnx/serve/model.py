"""A model as the server holds it: one onnxruntime session (the same Runtime and contract
``fashion-infer`` uses), the v2 metadata it is described by, and the two ways rows reach
it (model input tensors, or encoded image files prepared as ``fashion-infer`` does)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.infer.contract import PROBABILITIES, ModelContract, check_contract, read_model
from fashion_onnx.infer.decode import decode_chunk
from fashion_onnx.infer.prepare import Preparation
from fashion_onnx.infer.runtime import create_session

INPUT_SHAPE = (1, IMAGE_SIZE, IMAGE_SIZE)
IMAGE_INPUT = "image"  # the BYTES input: encoded image files, one per element


@dataclass
class ServedModel:
    """One model. ``run`` is the engine: model input rows -> every output, row-aligned."""

    name: str
    source: str
    session: Any  # onnxruntime.InferenceSession
    contract: ModelContract
    outputs: tuple[str, ...]  # the session's outputs, plus "probabilities" if it lacks one

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
        session = create_session(data, device, threads, False, source)
        contract = check_contract(session, source)
        names = tuple(o.name for o in session.get_outputs())
        outputs = names if PROBABILITIES in names else (*names, PROBABILITIES)
        return cls(name, source, session, contract, outputs)

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """float32 (n, 1, 28, 28) model input -> {output name: (n, 10) float32}."""
        names = [o for o in self.outputs if o != PROBABILITIES or not self.contract.softmax]
        values = self.session.run(names, {self.contract.input_name: x})
        out = dict(zip(names, values, strict=True))
        if self.contract.softmax:
            out[PROBABILITIES] = self.contract.probabilities(out[self.contract.output_name])
        return out

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
