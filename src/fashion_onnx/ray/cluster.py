"""Connecting to Ray: the rules every Ray path shares (``fashion-infer --engine ray`` and
``fashion-serve --engine ray``): an address or ``$RAY_ADDRESS`` or a local Ray on
127.0.0.1, bounded waits, and one clear error for an unreachable cluster or a missing
token. Nothing here is imported unless Ray is asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fashion_onnx.errors import FashionOnnxError, MissingExtraError

RAY_INSTALL = "pip install 'fashion-onnx[ray]'"
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # s3://, gs://, file://, ...
CONNECT_TIMEOUT_S = 45.0  # a cluster that has not answered by then is reported, not waited on


class RayClusterError(FashionOnnxError, ConnectionError):
    """The Ray cluster cannot be reached or used; the message says why and what to do."""


def is_uri(path: str) -> bool:
    """Whether ``path`` names object storage or a filesystem by scheme (``s3://...``)."""
    return bool(URI.match(path))


@dataclass(frozen=True)
class ClusterInfo:
    address: str  # the GCS address, e.g. 127.0.0.1:6379
    started_here: bool  # a local Ray this process started (and will stop)
    connected_here: bool  # this call connected (False: Ray was connected already)
    nodes: int
    cpus: int
    gpus: int

    def describe(self) -> str:
        where = "a local Ray" if self.started_here else f"the Ray cluster at {self.address}"
        return f"{where} ({self.nodes} node(s), {self.cpus} CPU(s), {self.gpus} GPU(s))"


def _import_ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError:
        raise MissingExtraError(f"--engine ray needs Ray: run {RAY_INSTALL}") from None
    return ray


@contextlib.contextmanager
def _stderr_to(path: str) -> Iterator[None]:
    """Point file descriptor 2 at ``path``: Ray's C++ core logs there while it connects."""
    saved = os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(log)


def _quiet_ray_data() -> None:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one progress display: ours
    context.print_on_execution_start = False
    context.execution_options.preserve_order = True  # rows come back in input order
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def _check_reachable(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise RayClusterError(f"Ray address {address!r} is not HOST:PORT")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            pass
    except OSError as exc:
        raise RayClusterError(f"cannot reach the Ray cluster at {address}: {exc}") from None


def _explain(address: str, exc: BaseException) -> RayClusterError:
    chain = f"{exc} {exc.__cause__ or ''}"
    if "InvalidAuthToken" in chain or "Unauthenticated" in chain:
        if os.environ.get("RAY_AUTH_MODE") != "token":
            return RayClusterError(
                f"the Ray cluster at {address} requires token authentication: set "
                "RAY_AUTH_MODE=token (the token is read from ~/.ray/auth_token, "
                "RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)"
            )
        return RayClusterError(
            f"the Ray cluster at {address} rejected this machine's token "
            "(~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH): use the cluster's"
        )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return RayClusterError(f"cannot use the Ray cluster at {address}: {first}")


def connect(address: str | None = None, *, num_cpus: int | None = None) -> ClusterInfo:
    """Join the cluster at ``address`` (else ``$RAY_ADDRESS``), or start a local Ray.

    A Ray already initialised in this process is used as it is. Failing clusters are
    reported within about ``CONNECT_TIMEOUT_S`` seconds, never waited on forever.

    Raises:
        RayClusterError: unreachable, not Ray, or refusing this client (the message names
            RAY_AUTH_MODE=token when the cluster wants a token).
        MissingExtraError: Ray is not installed.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None and address not in ("auto", "local") and not is_uri(address):
        _check_reachable(address)
        # Bound Ray's own retries (read when ray is first imported): seconds, not minutes.
        os.environ.setdefault("RAY_gcs_server_port_wait_time_s", "5")
        os.environ.setdefault("RAY_gcs_rpc_server_connect_timeout_s", "3")
    if address in (None, "local"):
        # A local Ray talks on 127.0.0.1 only (Ray otherwise advertises and listens on the
        # machine's interfaces).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    ray = _import_ray()
    started_here = False
    connected_here = not ray.is_initialized()
    if connected_here:
        started_here = address in (None, "local")
        box: dict[str, BaseException] = {}

        def init() -> None:
            try:
                ray.init(
                    address="local" if address is None else address,
                    num_cpus=num_cpus if started_here else None,
                    include_dashboard=False if started_here else None,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                )
            except BaseException as exc:  # reported below, on the caller's thread
                box["error"] = exc

        log = os.path.join(tempfile.gettempdir(), f"fashion-infer-ray-{os.getpid()}.log")
        with _stderr_to(log):
            if started_here:
                # On this thread: Linux ends the processes Ray starts (GCS, raylet) when the
                # thread that started them exits. A local start cannot hang on a network.
                init()
            else:  # joining a cluster: bounded, whatever the network does
                thread = threading.Thread(target=init, daemon=True)
                thread.start()
                thread.join(CONNECT_TIMEOUT_S)
                if thread.is_alive():
                    raise RayClusterError(
                        f"the Ray cluster at {address} did not answer within "
                        f"{CONNECT_TIMEOUT_S:.0f} s (Ray's log: {log})"
                    )
        if "error" in box:
            raise _explain(address or "local", box["error"]) from None
        with contextlib.suppress(OSError):  # connected: the log is kept only when it failed
            os.remove(log)
    _quiet_ray_data()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    resources = ray.cluster_resources()
    return ClusterInfo(
        address=ray.get_runtime_context().gcs_address,
        started_here=started_here,
        connected_here=connected_here,
        nodes=len(nodes),
        cpus=int(resources.get("CPU", 0)),
        gpus=int(resources.get("GPU", 0)),
    )


def disconnect(cluster: ClusterInfo) -> None:
    """Undo ``connect``: a local Ray it started stops, a cluster it joined keeps running
    (only this driver leaves), a connection made before it stays. Explicit, because the
    CLI ends without Python's teardown and so without Ray's own exit hook."""
    if cluster.connected_here:
        import ray

        ray.shutdown()
