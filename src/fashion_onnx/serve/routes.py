"""The server's routes: the v2 protocol (health, server and model metadata, infer), the
curl-friendly ``POST /v1/models/NAME/classify`` and ``GET /metrics``, behind the token.
Each request becomes one ``Reply``; the ASGI plumbing that sends it is ``asgi.py``."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import numpy as np

from fashion_onnx import __version__
from fashion_onnx.infer.prepare import Preparation
from fashion_onnx.infer.rows import row_values
from fashion_onnx.serve.batching import Batcher, Batching
from fashion_onnx.serve.limits import (
    Limits,
    Receive,
    Scope,
    Security,
    authorized,
    check_count,
    read_body,
)
from fashion_onnx.serve.metrics import Metrics
from fashion_onnx.serve.model import IMAGE_INPUT, INPUT_SHAPE, ServedModel
from fashion_onnx.serve.protocol import (
    BINARY_HEADER,
    InferRequest,
    ProtocolError,
    encode_infer,
    parse_infer,
    parse_multipart,
)

INLINE_DECODE_BYTES = 64 * 1024  # smaller uploads decode on the loop (a thread hop costs more)
MAX_TOP_K = 10
SERVER_METADATA = {  # GET /v2
    "name": "fashion-serve",
    "version": __version__,
    "extensions": ["binary_tensor_data", "classification"],
}


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def json_reply(status: int, value: Any) -> Reply:
    return Reply(status, json.dumps(value, separators=(",", ":")).encode())


def error_reply(status: int, message: str) -> Reply:
    return json_reply(status, {"error": message})


class Routes:
    """What the server answers for ``models``; each model's batcher, and the metrics.

    Args:
        models: served models by name.
        batching, limits, security: see their classes.
        preparation: how image files are prepared (as ``fashion-infer``'s options).
    """

    def __init__(
        self,
        models: dict[str, ServedModel],
        *,
        batching: Batching | None = None,
        limits: Limits | None = None,
        security: Security | None = None,
        preparation: Preparation | None = None,
    ) -> None:
        self.models = models
        self.batching = batching or Batching()
        self.limits = limits or Limits()
        self.security = security or Security()
        self.preparation = preparation or Preparation()
        self.metrics = Metrics()
        self.batchers: dict[str, Batcher] = {}
        self.ready = True
        # Set when the server starts shutting down: the event loop time by which bodies
        # still arriving must be in (read_body answers 503 to those that are not).
        self.body_deadline: float | None = None

    def batcher(self, name: str) -> Batcher:
        """The model's batcher, made on the running event loop the first time."""
        if name not in self.batchers:
            model = self.models[name]
            self.batchers[name] = Batcher(
                model.run,
                max_batch=self.batching.max_batch,
                max_delay_s=self.batching.max_delay_ms / 1000,
                runners=self.batching.runners,
                on_batch=lambda n: self.metrics.batch.observe(name, n),
            )
        return self.batchers[name]

    def drain(self, body_deadline: float) -> None:
        """Shutdown has begun: not ready; bodies still arriving have until
        ``body_deadline`` (event loop time) to arrive."""
        self.ready = False
        self.body_deadline = body_deadline

    def shutdown_deadline(self) -> float | None:
        return self.body_deadline

    def close(self) -> None:
        self.ready = False
        for batcher in self.batchers.values():
            batcher.close()

    def model_of(self, path: str) -> str:
        """The served model whose routes ``path`` is under (``/v2/models/NAME/...``,
        ``/v1/models/NAME/...``), else "": the request's label in the metrics, whatever
        its answer (a malformed request to a model counts against that model). Names no
        model has (a client's typo) are not labels."""
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 3 and parts[0] in ("v1", "v2") and parts[1] == "models":
            return parts[2] if parts[2] in self.models else ""
        return ""

    async def handle(self, scope: Scope, headers: dict[str, str], receive: Receive) -> Reply:
        """The reply to one request.

        Raises:
            ProtocolError: the request is refused (its status and message).
            FashionOnnxError: a setting the request chose is out of range.
        """
        method, path = scope["method"], scope["path"]
        if not authorized(self.security, path, headers):
            return error_reply(401, "a token is required: Authorization: Bearer <token>")
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 5 and parts[:2] == ["v2", "models"] and parts[3] == "versions":
            if parts[4] != "1":
                raise ProtocolError(404, f"model {parts[2]!r} has only version 1")
            parts = parts[:3] + parts[5:]  # /v2/models/NAME/versions/1/... = /v2/models/NAME/...
        if parts in (["v2", "health", "live"], ["v2", "health", "ready"]):
            self._only(method, "GET")
            ok = self.ready or parts[2] == "live"
            return json_reply(
                200 if ok else 503, {"live": True} if parts[2] == "live" else {"ready": ok}
            )
        if parts == ["v2"]:
            self._only(method, "GET")
            return json_reply(200, SERVER_METADATA)
        if parts == ["metrics"]:
            self._only(method, "GET")
            return Reply(200, self.metrics.text().encode(), "text/plain; version=0.0.4")
        if parts[:2] == ["v2", "models"] and len(parts) in (3, 4):
            name, action = parts[2], parts[3] if len(parts) == 4 else ""
            if action not in ("", "ready", "infer"):
                raise ProtocolError(404, f"no route {path}")
            served = self._model(name)
            if action == "":
                self._only(method, "GET")
                return json_reply(200, served.metadata())
            if action == "ready":
                self._only(method, "GET")
                return json_reply(200, {"name": name, "ready": self.ready})
            self._only(method, "POST")
            return await self._infer(served, headers, receive)
        if len(parts) == 4 and parts[:2] == ["v1", "models"] and parts[3] == "classify":
            served = self._model(parts[2])
            self._only(method, "POST")
            return await self._classify(served, scope, headers, receive)
        if parts == ["v2", "models"]:
            self._only(method, "GET")
            return json_reply(200, {"models": sorted(self.models)})
        raise ProtocolError(404, f"no route {path}")

    @staticmethod
    def _only(method: str, allowed: str) -> None:
        if method != allowed:
            raise ProtocolError(405, f"method {method} not allowed here; use {allowed}")

    def _model(self, name: str) -> ServedModel:
        try:
            return self.models[name]
        except KeyError:
            raise ProtocolError(
                404, f"unknown model {name!r}; served: {', '.join(sorted(self.models))}"
            ) from None

    # -- the two inference routes -------------------------------------------------------

    async def _decode(
        self, served: ServedModel, files: list[bytes]
    ) -> tuple[np.ndarray, list[str | None]]:
        if sum(len(f) for f in files) <= INLINE_DECODE_BYTES:
            return served.decode(files, self.preparation)
        return await asyncio.to_thread(served.decode, files, self.preparation)

    async def _rows(self, served: ServedModel, request: InferRequest) -> np.ndarray:
        """The request's one input as model input rows (n, 1, 28, 28)."""
        input_name = served.contract.input_name
        if len(request.inputs) != 1:
            raise ProtocolError(
                400, f"give one input: {input_name} (FP32) or {IMAGE_INPUT} (BYTES)"
            )
        tensor = request.inputs[0]
        if tensor.name == input_name:
            if tensor.datatype != "FP32" or tensor.array is None:
                raise ProtocolError(
                    400, f"input {tensor.name!r} must be FP32, not {tensor.datatype}"
                )
            if len(tensor.shape) != 4 or tuple(tensor.shape[1:]) != INPUT_SHAPE:
                raise ProtocolError(
                    400, f"input {tensor.name!r}: shape {tensor.shape} is not [N, 1, 28, 28]"
                )
            check_count(self.limits, tensor.shape[0])
            if not np.isfinite(tensor.array).all():
                raise ProtocolError(400, f"input {tensor.name!r} holds NaN or infinity")
            return tensor.array.reshape(tensor.shape)
        if tensor.name == IMAGE_INPUT:
            if tensor.datatype != "BYTES" or tensor.items is None:
                raise ProtocolError(
                    400, f"input {IMAGE_INPUT!r} must be BYTES, not {tensor.datatype}"
                )
            if len(tensor.shape) not in (1, 2) or tensor.shape[1:] not in ([], [1]):
                raise ProtocolError(
                    400, f"input {IMAGE_INPUT!r}: shape {tensor.shape} is not [N] or [N, 1]"
                )
            check_count(self.limits, len(tensor.items))
            images, errors = await self._decode(served, tensor.items)
            bad = [f"image {i}: {e}" for i, e in enumerate(errors) if e is not None]
            if bad:
                raise ProtocolError(422, "; ".join(bad))
            return served.model_input(images)
        raise ProtocolError(
            400,
            f"unknown input {tensor.name!r}; {served.name} takes {input_name} "
            f"(FP32) or {IMAGE_INPUT} (BYTES)",
        )

    async def _infer(self, served: ServedModel, headers: dict[str, str], receive: Receive) -> Reply:
        body = await read_body(self.limits, headers, receive, self.shutdown_deadline)
        request = parse_infer(body, headers.get(BINARY_HEADER))
        names = request.outputs if request.outputs is not None else list(served.outputs)
        for name in names:
            if name not in served.outputs:
                raise ProtocolError(
                    400, f"unknown output {name!r}; {served.name} has {', '.join(served.outputs)}"
                )
        rows = await self._rows(served, request)
        if len(rows) == 0:
            raise ProtocolError(400, "no images in the request")
        outputs = await self.batcher(served.name).submit(rows)
        body, header_length = encode_infer(served.name, request, {n: outputs[n] for n in names})
        if header_length is None:
            return Reply(200, body)
        binary = [(BINARY_HEADER.encode(), str(header_length).encode())]
        return Reply(200, body, "application/octet-stream", binary)

    async def _classify(
        self, served: ServedModel, scope: Scope, headers: dict[str, str], receive: Receive
    ) -> Reply:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        top_k = 3
        if "top_k" in query:
            value = query["top_k"][-1]
            if not value.isdigit() or not 1 <= int(value) <= MAX_TOP_K:
                raise ProtocolError(
                    400, f"top_k must be an integer in 1..{MAX_TOP_K}, got {value!r}"
                )
            top_k = int(value)
        body = await read_body(self.limits, headers, receive, self.shutdown_deadline)
        files = [
            u for u in parse_multipart(body, headers.get("content-type", "")) if u.field == "file"
        ]
        if not files:
            raise ProtocolError(400, "no file fields in the form: send -F file=@image.png")
        check_count(self.limits, len(files))
        images, errors = await self._decode(served, [f.data for f in files])
        results: list[dict[str, Any]] = []
        probabilities = np.empty((0, len(served.contract.class_names)), np.float32)
        if len(images):
            out = await self.batcher(served.name).submit(served.model_input(images))
            probabilities = served.reported(out)  # calibrated, as fashion-infer reports
        rows = row_values(probabilities, served.contract.class_names, top_k)
        labels, confidences, classes = rows.labels.tolist(), rows.confidences, rows.classes()
        top = rows.top_k()
        row = 0
        for upload, error in zip(files, errors, strict=True):
            if error is not None:
                results.append({"file": upload.filename, "error": error})
                continue
            results.append(
                {
                    "file": upload.filename,
                    "label": labels[row],
                    "class": classes[row],
                    "confidence": float(confidences[row]),
                    "top_k": [
                        {"label": i, "class": name, "probability": float(q)}
                        for i, name, q in top[row]
                    ],
                }
            )
            row += 1
        answer: dict[str, Any] = {"model": served.name, "results": results}
        if row == 0:
            answer = {"error": "none of the files could be read", **answer}
        return json_reply(422 if row == 0 else 200, answer)
