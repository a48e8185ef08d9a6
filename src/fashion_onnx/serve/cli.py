"""``fashion-serve``: the models over HTTP (KServe v2 / open inference protocol).

A thin shell: parse options, build the app (``app.py``), run it here on uvicorn
(``asgi.py``) or on a Ray cluster with Ray Serve (``fashion_onnx.ray.serve``), map errors
to exit statuses.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from typing import Annotated

import typer

from fashion_onnx.cli_common import (
    Command,
    VersionOption,
    extra_needed,
    fail,
    run_reporting_errors,
    run_then_exit_at_once,
    warnings_as_lines,
)
from fashion_onnx.constants import DEVICES

app = typer.Typer(add_completion=False, rich_markup_mode=None)
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?\s*$")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

# What fashion-serve needs beyond the base install (--engine local): the [serve] extra.
SERVE_INSTALL = "pip install '.[serve,cpu]' in a clone, or pip install 'fashion-onnx[serve,cpu]'"
SERVE_EXTRA_MODULES = frozenset({"uvicorn", "httptools"})


def parse_size(text: str) -> int:
    """ "16MB", "512KB", "1048576" -> bytes (powers of 1024)."""
    match = SIZE.match(text)
    if not match:
        raise typer.BadParameter(f"{text!r} is not a size like 16MB", param_hint="--max-body")
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    size = int(float(match.group(1)) * scale)
    if size < 1024:
        raise typer.BadParameter("must be at least 1KB", param_hint="--max-body")
    return size


def parse_models(specs: list[str]) -> list[tuple[str, str]]:
    """The embedded "mlp" and "cnn", then each NAME=PATH."""
    models = [("mlp", "mlp"), ("cnn", "cnn")]
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not path:
            raise typer.BadParameter(f"{spec!r} is not NAME=PATH", param_hint="--model")
        models = [m for m in models if m[0] != name] + [(name, path)]
    return models


@app.command(
    cls=Command,  # usage errors as one error: line, --version
    help="Serve the models over HTTP: the KServe v2 / open inference protocol (Triton's "
    "clients work), and POST /v1/models/NAME/classify for curl users. Serves the embedded "
    "mlp and cnn, and each --model NAME=PATH.\n\n"
    "Stops on SIGTERM or Ctrl-C after answering the requests in flight.\n\n"
    "Exit status: 0 stopped cleanly; 2 usage or configuration error (a bad model, an "
    "unusable device or cluster, a port in use).",
)
def serve_command(
    host: Annotated[
        str, typer.Option(help="Address to listen on; the default takes local clients only.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", help="Also serve NAME=PATH (an ONNX file that keeps the contract)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help=f"One of {', '.join(DEVICES)}.")] = "auto",
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Threads per batch (onnxruntime intra-op; they sleep when idle, so "
            "the event loop keeps its core). [default: the CPUs this process may use; 1 per "
            "replica with --engine ray]",
            show_default=False,
        ),
    ] = None,
    max_batch: Annotated[
        int, typer.Option(min=0, help="Most images per model run; 0: 64 on CPU, 1024 on CUDA.")
    ] = 0,
    runners: Annotated[
        int,
        typer.Option(
            "--engines",
            min=1,
            help="Batches computed at once per model, each on its own thread (with --threads "
            "threads each).",
        ),
    ] = 1,
    max_delay_ms: Annotated[
        float,
        typer.Option(min=0, max=1000, help="Most time a request waits for others to batch with."),
    ] = 1.0,
    max_body: Annotated[
        str, typer.Option(help="Largest request body; larger ones get 413.")
    ] = "16MB",
    max_batch_images: Annotated[
        int, typer.Option(min=1, help="Most images in one request; more get 413.")
    ] = 1024,
    header_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds a client has to send a request's headers.")
    ] = 10.0,
    body_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds a client has to send a request's body.")
    ] = 30.0,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="FASHION_SERVE_TOKEN",
            help="Require 'Authorization: Bearer TOKEN' (health probes excepted).",
            show_default=False,
        ),
    ] = None,
    cors: Annotated[
        list[str] | None,
        typer.Option(help="Let browser pages from ORIGIN call the server (repeatable)."),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help=f"One of {', '.join(LOG_LEVELS)}; info logs each request.")
    ] = "warning",
    engine: Annotated[
        str, typer.Option(help="local (this process) or ray (replicas on Ray Serve).")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="With --engine ray: the cluster (HOST:PORT). [default: $RAY_ADDRESS, else a "
            "local Ray]",
            show_default=False,
        ),
    ] = None,
    replicas: Annotated[
        int | None, typer.Option(min=1, help="With --engine ray: a fixed number of replicas.")
    ] = None,
    min_replicas: Annotated[
        int | None, typer.Option(min=0, help="With --engine ray: autoscale from this many.")
    ] = None,
    max_replicas: Annotated[
        int | None, typer.Option(min=1, help="With --engine ray: autoscale up to this many.")
    ] = None,
    debug: Annotated[bool, typer.Option(help="Show tracebacks for errors.")] = False,
    version: VersionOption = False,
) -> None:
    if device not in DEVICES:
        raise typer.BadParameter(
            f"{device!r} is not one of {', '.join(DEVICES)}", param_hint="--device"
        )
    if log_level not in LOG_LEVELS:
        raise typer.BadParameter(
            f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}", param_hint="--log-level"
        )
    if engine not in ("local", "ray"):
        raise typer.BadParameter(f"{engine!r} is not local or ray", param_hint="--engine")
    if engine == "local" and (replicas or min_replicas is not None or max_replicas):
        fail("--replicas, --min-replicas and --max-replicas need --engine ray")
    if replicas is not None and (min_replicas is not None or max_replicas is not None):
        fail("give --replicas, or --min-replicas/--max-replicas, not both")
    if token is not None and not token.strip():
        fail("--token (or FASHION_SERVE_TOKEN) is empty")
    body_limit = parse_size(max_body)
    specs = parse_models(model or [])
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def start() -> None:
        sockets: list[socket.socket] = []
        if engine == "local":
            # Before anything is said or loaded: the [serve] extra, then the port (one
            # error: line each, no banner; uvicorn would log its own ERROR line first).
            with extra_needed("fashion-serve", "serve", SERVE_EXTRA_MODULES, SERVE_INSTALL):
                import httptools  # noqa: F401
                import uvicorn  # noqa: F401

            from fashion_onnx.serve.asgi import listen

            sockets = listen(host, port)
        try:
            serve(sockets)
        finally:
            for sock in sockets:
                sock.close()

    def serve(sockets: list[socket.socket]) -> None:
        from fashion_onnx.infer.contract import read_model
        from fashion_onnx.infer.files import default_workers
        from fashion_onnx.infer.runtime import cuda_problem
        from fashion_onnx.serve.app import (
            Batching,
            Limits,
            Security,
            ServeSettings,
            build_app,
            run_server,
        )
        from fashion_onnx.serve.asgi import url_host

        on_cuda = device == "cuda" or (device == "auto" and cuda_problem() is None)
        settings = ServeSettings(
            models=tuple((name, read_model(path)[0]) for name, path in specs),
            device=device,
            threads=threads or (1 if engine == "ray" else default_workers()),
            batching=Batching(max_batch or (1024 if on_cuda else 64), max_delay_ms, runners),
            limits=Limits(body_limit, max_batch_images, body_timeout, header_timeout),
            security=Security(token, tuple(cors or ())),
        )
        names = ", ".join(name for name, _ in specs)
        if engine == "ray":
            from fashion_onnx.ray.serve import serve_on_ray

            warn_if_public()
            serve_on_ray(
                settings,
                host=host,
                port=port,
                address=ray_address,
                replicas=replicas,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                announce=lambda where: typer.echo(
                    f"fashion-serve: {names} on http://{url_host(host)}:{port} ({where})",
                    err=True,
                ),
            )
            return
        application = build_app(settings)
        providers = {m.provider for m in application.models.values()}
        bound = sockets[0].getsockname()[1]  # --port 0: the port the system chose
        warn_if_public()
        typer.echo(
            f"fashion-serve: {names} on http://{url_host(host)}:{bound} "
            f"({', '.join(sorted(providers))}); SIGTERM or Ctrl-C stops it",
            err=True,
        )
        run_server(application, host, bound, log_level, sockets)

    def warn_if_public() -> None:
        if host not in LOCAL_HOSTS:
            typer.echo(
                f"warning: listening on {host}: clients beyond this machine can connect",
                err=True,
            )

    with warnings_as_lines():
        run_reporting_errors(start, debug=debug)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run_then_exit_at_once(app)
