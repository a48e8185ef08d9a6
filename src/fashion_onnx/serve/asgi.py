"""The routes as one plain ASGI app (measured: a bare ASGI app on uvicorn answers about
twice as many requests a second as the same route in Starlette): errors to statuses, CORS
(the preflight, and the headers on each response), metrics and the access log, the
lifespan; and the uvicorn server that runs it with header and body time-outs and a
graceful SIGTERM.

Ray Serve deploys the same app (``fashion_onnx.ray.serve``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from fashion_onnx.errors import FashionOnnxError
from fashion_onnx.infer.prepare import Preparation
from fashion_onnx.serve.batching import Batching
from fashion_onnx.serve.limits import Limits, Receive, Scope, Security, Send
from fashion_onnx.serve.model import ServedModel
from fashion_onnx.serve.protocol import BINARY_HEADER, ProtocolError
from fashion_onnx.serve.routes import Reply, Routes, error_reply

log = logging.getLogger("fashion_onnx.serve")


class ServeError(FashionOnnxError, OSError):
    """The server cannot start (its port is taken, its address is not this machine's)."""


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
        batching: Batching | None = None,
        limits: Limits | None = None,
        security: Security | None = None,
        preparation: Preparation | None = None,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.routes = Routes(
            models, batching=batching, limits=limits, security=security, preparation=preparation
        )
        self.models, self.limits, self.security = models, self.routes.limits, self.routes.security
        self.metrics = self.routes.metrics
        self.extra_headers = extra_headers or []

    def close(self) -> None:
        self.routes.close()

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
            if scope["method"] == "OPTIONS" and self.security.cors:
                reply = self._preflight(headers)
            else:
                reply, model = await self.routes.handle(scope, headers, receive)
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

    def _preflight(self, headers: dict[str, str]) -> Reply:
        origin = headers.get("origin", "")
        if origin not in self.security.cors:
            return error_reply(403, f"origin {origin!r} is not allowed (--cors)")
        allowed = b"authorization, content-type, inference-header-content-length"
        return Reply(
            204,
            b"",
            headers=[
                (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                (b"access-control-allow-headers", allowed),
                (b"access-control-max-age", b"600"),
            ],
        )

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
    flight (for up to 8 s) and return.

    Raises:
        ServeError: the server cannot listen on ``host``:``port``.
    """
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
