"""``ModelRunner``: the one way a model file is run: an ONNX Runtime session that turns
prepared 28x28 images into probabilities (and logits), honouring the model's contract.

The part every path shares: ``Classifier`` holds one, and so does each worker process of
``classify_files`` and each Ray actor. It knows nothing of files, formats or scheduling.
"""

from __future__ import annotations

import threading

import numpy as np

from fashion_onnx.constants import DEFAULT_BATCH_CPU, DEFAULT_BATCH_CUDA
from fashion_onnx.errors import InvalidArgumentError, ModelError
from fashion_onnx.infer.contract import PROBABILITIES, ModelContract, check_contract
from fashion_onnx.infer.runtime import CUDA, create_session


class ModelRunner:
    """A session on ``device`` for the model in ``model_bytes`` (read by ``read_model``).

    Args:
        model_bytes: the ONNX file's bytes.
        source: what to call the model in messages (its path, or "mlp").
        device: "auto", "cuda" or "cpu" (see ``runtime.create_session``).
        batch_size: images per session call; None: 512 on the CPU, 4096 on CUDA.
        threads: intra-op threads of the CPU provider; None lets onnxruntime choose.
        spinning: let idle engine threads busy-wait for the next batch.

    Raises:
        ModelError: the model is unreadable or not [N,1,28,28] -> [N,10].
        DeviceError: device="cuda" and CUDA is not usable.
        InvalidArgumentError: batch_size below 1.
    """

    def __init__(
        self,
        model_bytes: bytes,
        source: str,
        *,
        device: str = "auto",
        batch_size: int | None = None,
        threads: int | None = None,
        spinning: bool = True,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be >= 1, got {batch_size}")
        self.model_bytes, self.source = model_bytes, source
        self._session = create_session(model_bytes, device, threads, spinning, source)
        self.contract: ModelContract = check_contract(self._session, source)
        on_cuda = self.provider == CUDA
        default_batch = DEFAULT_BATCH_CUDA if on_cuda else DEFAULT_BATCH_CPU
        self.batch_size: int = self.contract.fixed_batch or batch_size or default_batch
        # On CUDA, IO binding: each batch is copied to the device once and read back once.
        # one IO binding per thread: the server runs batches on several threads at once
        self._bindings = threading.local() if on_cuda else None
        self._output_names = [o.name for o in self._session.get_outputs()]

    @property
    def provider(self) -> str:
        """The execution provider the session really runs on, e.g. CPUExecutionProvider."""
        return str(self._session.get_providers()[0])

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.contract.class_names

    def _run(self, images: np.ndarray, with_logits: bool = False) -> list[np.ndarray]:
        """(n <= batch_size, 28, 28) images, dark background -> [probabilities (n, 10)], and
        the logits (n, 10) after them when ``with_logits`` (one session call either way)."""
        n = len(images)
        x = self.contract.model_input(images)
        if self.contract.fixed_batch is not None and n < self.contract.fixed_batch:
            x = np.concatenate(
                [x, np.zeros((self.contract.fixed_batch - n, *x.shape[1:]), x.dtype)]
            )
        names = [self.contract.output_name]
        if with_logits and self.contract.logits_name != self.contract.output_name:
            names.append(self._logits_name())
        outs = self._feed(names, x)
        probabilities = self.contract.probabilities(outs[0][:n])
        if not with_logits:
            return [probabilities]
        return [probabilities, outs[-1][:n].astype(np.float32, copy=False)]

    def outputs(self) -> tuple[str, ...]:
        """The names ``run_outputs`` gives: the session's outputs, and "probabilities"
        when the file has no output of that name (a model that returns logits only)."""
        names = tuple(self._output_names)
        return names if PROBABILITIES in names else (*names, PROBABILITIES)

    def run_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """float32 model input rows (n, 1, 28, 28), already scaled (``contract.model_input``)
        -> {output name: (n, ...)} for every output (``outputs``), in batches the model
        accepts: a model whose batch axis is fixed is fed padded batches of that size."""
        names, fixed = self._output_names, self.contract.fixed_batch
        if fixed is None and len(x):
            values = self._feed(names, x)  # one call: the server's every batch
        else:
            parts: list[list[np.ndarray]] = []
            for start in range(0, len(x), fixed or 1):
                chunk = x[start : start + (fixed or 1)]
                n = len(chunk)
                if fixed is not None and n < fixed:
                    pad = np.zeros((fixed - n, *chunk.shape[1:]), chunk.dtype)
                    chunk = np.concatenate([chunk, pad])
                parts.append([v[:n] for v in self._feed(names, chunk)])
            values = [
                np.concatenate([p[i] for p in parts]) if parts else np.empty((0,), np.float32)
                for i in range(len(names))
            ]
        out = dict(zip(names, values, strict=True))
        if PROBABILITIES not in out:
            out[PROBABILITIES] = self.contract.probabilities(out[self.contract.output_name])
        return out

    def _feed(self, names: list[str], x: np.ndarray) -> list[np.ndarray]:
        """One session call (through IO binding on CUDA)."""
        if self._bindings is None:
            return list(self._session.run(names, {self.contract.input_name: x}))
        binding = getattr(self._bindings, "binding", None)
        if binding is None:
            binding = self._bindings.binding = self._session.io_binding()
        binding.clear_binding_outputs()
        binding.bind_cpu_input(self.contract.input_name, x)
        for name in names:
            binding.bind_output(name, "cuda")
        self._session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())

    def _logits_name(self) -> str:
        if self.contract.logits_name is None:
            raise ModelError(
                f"{self.source}: no logits output, so no energy score; "
                "export it with fashion-export, or use the msp score"
            )
        return self.contract.logits_name

    def predict_pixels(self, images: np.ndarray) -> np.ndarray:
        """(n, 28, 28) uint8, or floats in [0, 1], light garment on dark (already prepared)
        -> probabilities (n, 10) float32, in batches of ``batch_size``."""
        out = np.empty((len(images), len(self.class_names)), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            out[start : start + len(chunk)] = self._run(chunk)[0]
        return out

    def predict_with_logits(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As ``predict_pixels``, and the logits too (for the energy OOD score), fetched in
        the same session calls.

        Raises:
            ModelError: the model has no logits output.
        """
        self._logits_name()
        probs = np.empty((len(images), len(self.class_names)), dtype=np.float32)
        logits = np.empty_like(probs)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            probs[start : start + len(chunk)], logits[start : start + len(chunk)] = self._run(
                chunk, with_logits=True
            )
        return probs, logits
