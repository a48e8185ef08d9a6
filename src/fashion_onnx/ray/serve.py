"""``fashion-serve --engine ray``: the same app on Ray Serve, as replicas across a cluster.

Each replica builds the app (``build_app``) from the same settings, so it has its own
sessions and its own batcher: batching is per replica. Ray Serve's proxy (on the head node,
at ``--host``/``--port``) spreads requests over the replicas. The cluster is joined with the
rules ``fashion-infer --engine ray`` uses (``infer/ray_cluster.py``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from fashion_onnx.errors import InvalidArgumentError
from fashion_onnx.ray.cluster import RayClusterError, connect, disconnect
from fashion_onnx.serve.app import ServeSettings, build_app

APP_NAME = "fashion-serve"
NODE_HEADER = b"x-fashion-serve-node"  # which Ray node's replica answered


class FashionServeReplica:
    """The Ray Serve deployment: one replica of the app."""

    def __init__(self, settings: ServeSettings) -> None:
        import ray

        node = ray.get_runtime_context().get_node_id()
        self.fashion_app = build_app(settings, extra_headers=[(NODE_HEADER, node.encode())])

    def __serve_build_asgi_app__(self) -> Any:
        return self.fashion_app


def deployment(
    settings: ServeSettings,
    *,
    replicas: int | None = None,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
) -> Any:
    """The bound Ray Serve application: ``replicas`` fixed, or autoscaling between
    ``min_replicas`` and ``max_replicas`` (default: one replica)."""
    from ray import serve

    options: dict[str, Any] = {"ray_actor_options": {"num_cpus": 1}}
    if min_replicas is not None or max_replicas is not None:
        low, high = min_replicas or 1, max_replicas or max(1, min_replicas or 1)
        if low > high:
            raise InvalidArgumentError(f"--min-replicas {low} is above --max-replicas {high}")
        options["autoscaling_config"] = {"min_replicas": low, "max_replicas": high}
    else:
        options["num_replicas"] = replicas or 1
    ingress = serve.ingress()(FashionServeReplica)
    make: Any = serve.deployment  # its overloads do not take **options
    return make(ingress, name="FashionServe", **options).bind(settings)


def serve_on_ray(
    settings: ServeSettings,
    *,
    host: str,
    port: int,
    address: str | None,
    replicas: int | None,
    min_replicas: int | None,
    max_replicas: int | None,
    announce: Callable[[str], None],
) -> None:
    """Join (or start) the cluster, deploy, announce, serve until SIGTERM or SIGINT, then
    take the application down and leave the cluster.

    Raises:
        RayClusterError: the cluster cannot be reached or used, or Serve cannot start.
        MissingExtraError: Ray is not installed.
    """
    cluster = connect(address)
    stop = stop_on_signals()  # now: after ray.init (it sets its own), before Serve is up
    try:
        try:
            from ray import serve
        except ModuleNotFoundError:
            raise RayClusterError(
                "--engine ray needs Ray Serve: pip install 'fashion-onnx[serve,ray]'"
            ) from None
        app = deployment(
            settings, replicas=replicas, min_replicas=min_replicas, max_replicas=max_replicas
        )
        try:
            serve.start(http_options={"host": host, "port": port}, proxy_location="HeadOnly")
            serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RayClusterError(f"Ray Serve could not deploy fashion-serve: {first}") from None
        announce(f"Ray Serve on {cluster.describe()}")
        while not stop.wait(0.2):  # a timed wait: the handlers run between waits
            pass
        serve.delete(APP_NAME)
        serve.shutdown()  # type: ignore[no-untyped-call]
    finally:
        disconnect(cluster)


def stop_on_signals() -> threading.Event:
    """An event that SIGTERM or SIGINT sets. Ray's threads do not block these signals, so
    the kernel may deliver them to any thread (blocking them here for sigwait lost that
    race, and the process died of the signal); a handler runs in the main thread whichever
    thread the kernel picked, so the main thread waits on the event with a timeout."""
    stop = threading.Event()

    def handle(number: int, frame: FrameType | None) -> None:
        stop.set()

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, handle)  # replaces ray.init's SIGTERM handler (sys.exit)
    return stop
