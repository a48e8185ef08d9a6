"""The HTTP application: the v2 routes, the curl-friendly classify route, limits, token
auth, CORS and metrics, as one plain ASGI app (measured: a bare ASGI app on uvicorn
answers about twice as many requests a second as the same route in Starlette), and the
uvicorn server that runs it with header and body timeouts and a graceful SIGTERM.

Ray Serve deploys the same app (``ray_serve.py``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import numpy as np

from fashion_onnx import __version__
from fashion_onnx.errors import FashionOnnxError
from fashion_onnx.infer.prepare import Preparation
from fashion_onnx.infer.rows import row_values
from fashion_onnx.serve.batching import Batcher
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

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("fashion_onnx.serve")
MB = 1024 * 1024
INLINE_DECODE_BYTES = 64 * 1024  # smaller uploads decode on the loop (a thread hop costs more)
OPEN_ROUTES = ("/v2/health/live", "/v2/health/ready")  # no token needed (probes)
MAX_TOP_K = 10


class ServeError(FashionOnnxError, OSError):
    """The server cannot start (its port is taken, its address is not this machine's)."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server."""

    max_body: int = 16 * MB  # bytes; larger bodies get 413 before they are read
    max_batch_images: int = 1024  # images in one request
    body_timeout_s: float = 30.0  # to receive the whole body, once the headers are in
    header_timeout_s: float = 10.0  # to receive a request's headers


@dataclass(frozen=True)
class Batching:
    """How requests are gathered into engine calls (see ``Batcher``)."""

    max_batch: int = 64
    max_delay_ms: float = 1.0
    engines: int = 1


@dataclass(frozen=True)
class Security:
    token: str | None = None  # requires "Authorization: Bearer <token>" when set
    cors: tuple[str, ...] = ()  # origins allowed to call from a browser


@dataclass(frozen=True)
class ServeSettings:
    """Everything a server (or a Ray Serve replica) needs to build its app. Picklable:
    models travel as bytes, so every Ray node gets the same files."""

    models: tuple[tuple[str, bytes], ...]  # (name, ONNX bytes), in the order served
    device: str = "auto"
    threads: int | None = 1  # intra-op threads per engine
    batching: Batching = Batching()
    limits: Limits = Limits()
    security: Security = Security()
    preparation: Preparation = Preparation()


def build_app(
    settings: ServeSettings, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> App:
    """Load the models and make the app.

    Raises:
        ModelError: a model breaks the contract.
        DeviceError: the device is not usable.
    """
    models = {
        name: ServedModel.load(name, data, device=settings.device, threads=settings.threads)
        for name, data in settings.models
    }
    return App(
        models,
        batching=settings.batching,
        limits=settings.limits,
        security=settings.security,
        preparation=settings.preparation,
        extra_headers=extra_headers,
    )


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


class App:
    """The ASGI application serving ``models``.

    Args:
        models: served models by name.
        batching, limits, security: see their classes.
        preparation: how image files are prepared (as ``fashion-infer``'s options).
        extra_headers: added to every response (Ray Serve adds the replica's node).
    """

    def __init__(
        self,
        models: dict[str, ServedModel],
        *,
        batching: Batching = Batching(),
        limits: Limits = Limits(),
        security: Security = Security(),
        preparation: Preparation | None = None,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.models = models
        self.batching, self.limits, self.security = batching, limits, security
        self.preparation = preparation or Preparation()
        self.extra_headers = extra_headers or []
        self.metrics = Metrics()
        self.batchers: dict[str, Batcher] = {}
        self.ready = True

    def batcher(self, name: str) -> Batcher:
        """The model's batcher, made on the running event loop the first time."""
        if name not in self.batchers:
            model = self.models[name]
            self.batchers[name] = Batcher(
                model.run,
                max_batch=self.batching.max_batch,
                max_delay_s=self.batching.max_delay_ms / 1000,
                engines=self.batching.engines,
                on_batch=lambda n: self.metrics.batch.observe(name, n),
            )
        return self.batchers[name]

    def close(self) -> None:
        self.ready = False
        for batcher in self.batchers.values():
            batcher.close()

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        start = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        model = ""
        try:
            reply, model = await self._handle(scope, headers, receive)
        except ProtocolError as exc:
            reply = error_reply(exc.status, exc.message)
        except FashionOnnxError as exc:  # a setting the request chose, out of range
            reply = error_reply(400, str(exc).splitlines()[0])
        except Exception:  # a bug: logged here, never shown to the client
            log.exception("internal error on %s %s", scope["method"], scope["path"])
            reply = error_reply(500, "internal error (see the server's log)")
        await self._send(send, reply, headers.get("origin"))
        seconds = time.perf_counter() - start
        self.metrics.request(model, reply.status, seconds)
        if log.isEnabledFor(logging.INFO):
            client = scope.get("client") or ("-", 0)
            log.info(
                '%s:%s "%s %s" %d %.1f ms',
                client[0],
                client[1],
                scope["method"],
                scope["path"],
                reply.status,
                seconds * 1000,
            )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _send(self, send: Send, reply: Reply, origin: str | None) -> None:
        headers = [
            (b"content-type", reply.content_type.encode()),
            (b"content-length", str(len(reply.body)).encode()),
            *reply.headers,
            *self.extra_headers,
        ]
        if origin is not None and origin in self.security.cors:
            headers += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-expose-headers", BINARY_HEADER.encode()),
                (b"vary", b"Origin"),
            ]
        if reply.status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _body(self, headers: dict[str, str], receive: Receive) -> bytes:
        """The request body, within ``max_body`` bytes and ``body_timeout_s`` seconds.

        Raises:
            ProtocolError: 413 (too large), 408 (too slow), 400 (client went away).
        """
        limit = self.limits.max_body
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ProtocolError(
                413, f"body of {int(declared):,} bytes exceeds --max-body {limit:,}"
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_timeout_s
        chunks, size, more = [], 0, True
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise ProtocolError(
                    408, f"the body did not arrive within {self.limits.body_timeout_s:g} s"
                ) from None
            if message["type"] == "http.disconnect":
                raise ProtocolError(400, "the client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ProtocolError(413, f"body exceeds --max-body {limit:,} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # -- routing ------------------------------------------------------------------------

    async def _handle(
        self, scope: Scope, headers: dict[str, str], receive: Receive
    ) -> tuple[Reply, str]:
        """(the reply, the served model it concerned or "")."""
        method, path = scope["method"], scope["path"]
        if method == "OPTIONS" and self.security.cors:
            return self._preflight(headers), ""
        if self.security.token is not None and path not in OPEN_ROUTES:
            sent = headers.get("authorization", "")
            expected = f"Bearer {self.security.token}"
            if not hmac.compare_digest(sent.encode("latin-1"), expected.encode("latin-1")):
                return error_reply(401, "a token is required: Authorization: Bearer <token>"), ""
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
            ), ""
        if parts == ["v2"]:
            self._only(method, "GET")
            return json_reply(
                200,
                {
                    "name": "fashion-serve",
                    "version": __version__,
                    "extensions": ["binary_tensor_data", "classification"],
                },
            ), ""
        if parts == ["metrics"]:
            self._only(method, "GET")
            return Reply(200, self.metrics.text().encode(), "text/plain; version=0.0.4"), ""
        if parts[:2] == ["v2", "models"] and len(parts) in (3, 4):
            name, action = parts[2], parts[3] if len(parts) == 4 else ""
            if action not in ("", "ready", "infer"):
                raise ProtocolError(404, f"no route {path}")
            served = self._model(name)
            if action == "":
                self._only(method, "GET")
                return json_reply(200, served.metadata()), name
            if action == "ready":
                self._only(method, "GET")
                return json_reply(200, {"name": name, "ready": self.ready}), name
            self._only(method, "POST")
            return await self._infer(served, headers, receive), name
        if len(parts) == 4 and parts[:2] == ["v1", "models"] and parts[3] == "classify":
            served = self._model(parts[2])
            self._only(method, "POST")
            return await self._classify(served, scope, headers, receive), parts[2]
        if parts == ["v2", "models"]:
            self._only(method, "GET")
            return json_reply(200, {"models": sorted(self.models)}), ""
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

    def _preflight(self, headers: dict[str, str]) -> Reply:
        origin = headers.get("origin", "")
        if origin not in self.security.cors:
            return error_reply(403, f"origin {origin!r} is not allowed (--cors)")
        return Reply(
            204,
            b"",
            headers=[
                (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                (
                    b"access-control-allow-headers",
                    b"authorization, content-type, inference-header-content-length",
                ),
                (b"access-control-max-age", b"600"),
            ],
        )

    # -- the two inference routes -------------------------------------------------------

    async def _decode(
        self, served: ServedModel, files: list[bytes]
    ) -> tuple[np.ndarray, list[str | None]]:
        if sum(len(f) for f in files) <= INLINE_DECODE_BYTES:
            return served.decode(files, self.preparation)
        return await asyncio.to_thread(served.decode, files, self.preparation)

    def _check_count(self, n: int) -> None:
        if n > self.limits.max_batch_images:
            raise ProtocolError(
                413,
                f"{n} images in one request; --max-batch-images is {self.limits.max_batch_images}",
            )

    async def _rows(self, served: ServedModel, request: InferRequest) -> np.ndarray:
        """The request's one input as model input rows (n, 1, 28, 28)."""
        if len(request.inputs) != 1:
            raise ProtocolError(
                400, f"give one input: {served.contract.input_name} (FP32) or {IMAGE_INPUT} (BYTES)"
            )
        tensor = request.inputs[0]
        if tensor.name == served.contract.input_name:
            if tensor.datatype != "FP32" or tensor.array is None:
                raise ProtocolError(
                    400, f"input {tensor.name!r} must be FP32, not {tensor.datatype}"
                )
            if len(tensor.shape) != 4 or tuple(tensor.shape[1:]) != INPUT_SHAPE:
                raise ProtocolError(
                    400, f"input {tensor.name!r}: shape {tensor.shape} is not [N, 1, 28, 28]"
                )
            self._check_count(tensor.shape[0])
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
            self._check_count(len(tensor.items))
            images, errors = await self._decode(served, tensor.items)
            bad = [f"image {i}: {e}" for i, e in enumerate(errors) if e is not None]
            if bad:
                raise ProtocolError(422, "; ".join(bad))
            return served.model_input(images)
        raise ProtocolError(
            400,
            f"unknown input {tensor.name!r}; {served.name} takes {served.contract.input_name} "
            f"(FP32) or {IMAGE_INPUT} (BYTES)",
        )

    async def _infer(self, served: ServedModel, headers: dict[str, str], receive: Receive) -> Reply:
        body = await self._body(headers, receive)
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
        return Reply(
            200,
            body,
            "application/octet-stream",
            [(BINARY_HEADER.encode(), str(header_length).encode())],
        )

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
        body = await self._body(headers, receive)
        files = [
            u for u in parse_multipart(body, headers.get("content-type", "")) if u.field == "file"
        ]
        if not files:
            raise ProtocolError(400, "no file fields in the form: send -F file=@image.png")
        self._check_count(len(files))
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


# -- the server ---------------------------------------------------------------------------


def _timed_protocol(header_timeout_s: float) -> type:
    """uvicorn's httptools protocol, plus a deadline for each request's headers (uvicorn
    has none): a client that sends no request, or its headers too slowly, gets 408 and
    the connection is closed."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class TimedProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                body = b'{"error":"the request headers did not arrive in time"}'
                self.transport.write(
                    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                    b"connection: close\r\ncontent-length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return TimedProtocol


def _stopped(number: int, frame: object) -> None:
    """The signal uvicorn re-raises once it has stopped: nothing more to do."""


def run_server(app: App, host: str, port: int, log_level: str) -> None:
    """Serve ``app`` until SIGTERM or SIGINT: then stop accepting, finish the requests in
    flight (for up to 8 s) and return."""
    import uvicorn

    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ModuleNotFoundError:
        loop = "asyncio"
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=loop,
        http=_timed_protocol(app.limits.header_timeout_s),
        lifespan="on",
        access_log=False,  # the app logs one line per request itself
        log_level=log_level,
        log_config=None,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=8,
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again for the
    # handler it found installed: make that one a no-op, so a clean stop exits 0.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, _stopped)
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind
        if server.started:
            raise
        raise ServeError(
            f"cannot listen on {host}:{port} (in use, or not this machine's address)"
        ) from None
