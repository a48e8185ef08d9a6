"""What a request may ask of the server, and who may ask: the size and count limits, the
body read within them and its time-out, the bearer token and the CORS origins."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fashion_onnx.serve.protocol import ProtocolError

# The ASGI callables, as the server modules type them.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MB = 1024 * 1024
OPEN_ROUTES = ("/v2/health/live", "/v2/health/ready")  # no token needed (probes)


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server."""

    max_body: int = 16 * MB  # bytes; larger bodies get 413 before they are read
    max_batch_images: int = 1024  # images in one request
    body_timeout_s: float = 30.0  # to receive the whole body, once the headers are in
    header_timeout_s: float = 10.0  # to receive a request's headers


@dataclass(frozen=True)
class Security:
    token: str | None = None  # requires "Authorization: Bearer <token>" when set
    cors: tuple[str, ...] = ()  # origins allowed to call from a browser


def authorized(security: Security, path: str, headers: dict[str, str]) -> bool:
    """Whether the request may reach ``path``: no token is set, the route is a health
    probe, or it sent "Authorization: Bearer <token>" (compared in constant time)."""
    if security.token is None or path in OPEN_ROUTES:
        return True
    sent = headers.get("authorization", "")
    expected = f"Bearer {security.token}"
    return hmac.compare_digest(sent.encode("latin-1"), expected.encode("latin-1"))


def check_count(limits: Limits, n: int) -> None:
    """Refuse a request of more than ``max_batch_images`` images.

    Raises:
        ProtocolError: 413.
    """
    if n > limits.max_batch_images:
        raise ProtocolError(
            413,
            f"{n} images in one request; --max-batch-images is {limits.max_batch_images}",
        )


def _no_shutdown() -> float | None:
    return None


async def read_body(
    limits: Limits,
    headers: dict[str, str],
    receive: Receive,
    shutdown_deadline: Callable[[], float | None] = _no_shutdown,
) -> bytes:
    """The request body, within ``max_body`` bytes and ``body_timeout_s`` seconds.

    ``shutdown_deadline()`` is, once the server is shutting down, the event loop time by
    which bodies still arriving must be in (the server wakes this read when shutdown
    starts): a body complete by then is answered as usual, one that is not gets 503.

    Raises:
        ProtocolError: 413 (too large), 408 (too slow), 400 (client went away), 503 (the
            server is shutting down and the body did not arrive in time).
    """
    limit = limits.max_body
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProtocolError(413, f"body of {int(declared):,} bytes exceeds --max-body {limit:,}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.body_timeout_s
    chunks, size, more = [], 0, True
    while more:
        until, stopping = deadline, False
        stop = shutdown_deadline()
        if stop is not None and stop < deadline:
            until, stopping = stop, True
        try:
            message = await asyncio.wait_for(receive(), max(0.0, until - loop.time()))
        except TimeoutError:
            if stopping:
                raise ProtocolError(
                    503,
                    "the server is shutting down and the request body did not arrive in "
                    "time; send the request again",
                ) from None
            raise ProtocolError(
                408, f"the body did not arrive within {limits.body_timeout_s:g} s"
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
