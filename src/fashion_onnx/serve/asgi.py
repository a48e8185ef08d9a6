"""The routes as one plain ASGI app (measured: a bare ASGI app on uvicorn answers about
twice as many requests a second as the same route in Starlette): errors to statuses, CORS
(the preflight, and the headers on each response), metrics and the access log, the
lifespan; and the uvicorn server that runs it with header and body time-outs and a
graceful SIGTERM, on sockets bound before it starts (``listen``).

Ray Serve deploys the same app (``fashion_onnx.ray.serve``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import time

from fashion_onnx.errors import FashionOnnxError
from fashion_onnx.infer.prepare import Preparation
from fashion_onnx.serve.batching import Batching
from fashion_onnx.serve.limits import Limits, Receive, Scope, Security, Send
from fashion_onnx.serve.model import ServedModel
from fashion_onnx.serve.protocol import BINARY_HEADER, ProtocolError
from fashion_onnx.serve.routes import Reply, Routes, error_reply

log = logging.getLogger("fashion_onnx.serve")

# On SIGTERM, bodies still arriving have this long to arrive (then 503), and the requests
# in flight this long to be answered: uvicorn cancels what still runs after it.
BODY_GRACE_S = 5.0
GRACEFUL_SHUTDOWN_S = 8


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

    def drain(self, body_grace_s: float = BODY_GRACE_S) -> None:
        """Shutdown has begun (call on the event loop): not ready any more; bodies still
        arriving have ``body_grace_s`` to arrive, then get 503."""
        self.routes.drain(asyncio.get_running_loop().time() + body_grace_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        start = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        model = self.routes.model_of(scope["path"])
        try:
            if scope["method"] == "OPTIONS" and self.security.cors:
                reply = self._preflight(headers)
            else:
                reply = await self.routes.handle(scope, headers, receive)
        except ProtocolError as exc:
            reply = error_reply(exc.status, exc.message)
        except FashionOnnxError as exc:  # a setting the request chose, out of range
            reply = error_reply(400, str(exc).splitlines()[0])
        except Exception:  # a bug: logged here, never shown to the client
            log.exception("internal error on %s %s", scope["method"], scope["path"])
            reply = error_reply(500, "internal error (see the server's log)")
        except asyncio.CancelledError:
            # uvicorn cancels what still runs when the graceful shutdown's time is out: an
            # answer, not its 500 and a traceback.
            task = asyncio.current_task()
            if self.routes.body_deadline is None or task is None:
                raise
            task.uncancel()
            log.warning(
                "shutting down: %s %s was not answered in %g s (503)",
                scope["method"],
                scope["path"],
                GRACEFUL_SHUTDOWN_S,
            )
            reply = error_reply(
                503, "the server stopped before this request was answered; send it again"
            )
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

        def shutdown(self) -> None:
            # A request whose body is still arriving: wake its read, which then keeps
            # reading until the shutdown's body deadline (App.drain), not its own.
            cycle = self.cycle
            if cycle is not None and cycle.more_body and not cycle.response_complete:
                cycle.message_event.set()
            super().shutdown()

    return TimedProtocol


def _stopped(number: int, frame: object) -> None:
    """The signal uvicorn re-raises once it has stopped: nothing more to do."""


def url_host(host: str) -> str:
    """``host`` as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to ``host``:``port`` (one per address the name has, as asyncio's
    server binds them), not yet listening: the server listens on them once it starts.
    Binding first, the command can say the port is taken in one line before it says it
    serves (uvicorn would log an ERROR line, then exit).

    Raises:
        ServeError: the address is in use, not this machine's, or not allowed.
    """
    where = f"{url_host(host)}:{port}"
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ServeError(
            f"cannot listen on {where}: {host!r} does not resolve ({exc.strerror})"
        ) from None
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix":  # as asyncio does: rebinding right after a restart works
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # one port for every address of the name
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ServeError(f"cannot listen on {where}: {_bind_problem(exc, host, port)}") from None
    return sockets


def _bind_problem(exc: OSError, host: str, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the address is in use; stop what listens there, or pass another --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine; pass one of its own with --host"
    if exc.errno == errno.EACCES:
        return f"permission denied (port {port} needs privileges); pass --port 1024 or above"
    return exc.strerror or str(exc)


def run_server(
    app: App,
    host: str,
    port: int,
    log_level: str,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Serve ``app`` on ``sockets`` (from ``listen(host, port)``; bound here if not
    given) until SIGTERM or SIGINT: then stop accepting, let bodies still arriving arrive
    (for up to 5 s; then 503), finish the requests in flight (for up to 8 s) and return.

    Raises:
        ServeError: the server cannot listen on ``host``:``port``.
    """
    import uvicorn

    if sockets is None:
        sockets = listen(host, port)
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
        ws="none",  # a WebSocket upgrade is a plain request here (uvicorn would answer 500)
        lifespan="on",
        access_log=False,  # the app logs one line per request itself
        log_level=log_level,
        log_config=None,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
        date_header=False,
    )

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            app.drain()  # before uvicorn asks each connection to finish (and wakes reads)
            await super().shutdown(sockets)

    server = Server(config)
    # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again for the
    # handler it found installed: make that one a no-op, so a clean stop exits 0.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, _stopped)
    try:
        server.run(sockets=sockets)
    except SystemExit:  # uvicorn exits when it cannot start
        if server.started:
            raise
        raise ServeError(f"the server on {url_host(host)}:{port} could not start") from None
    finally:
        for sock in sockets:
            sock.close()
