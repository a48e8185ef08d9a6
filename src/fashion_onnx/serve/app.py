"""What a server is built from: ``ServeSettings`` (the models as bytes, the device, the
batching, limits, security and preparation) and ``build_app``, which loads the models and
makes the ASGI app. The command (``cli.py``) and each Ray Serve replica
(``fashion_onnx.ray.serve``) build their app here.

The parts: ``asgi`` (the app and its uvicorn server), ``routes`` (what each route answers),
``limits`` (what a request may ask), ``batching``, ``model``, ``protocol``, ``metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fashion_onnx.infer.prepare import Preparation
from fashion_onnx.serve.asgi import App, ServeError, run_server
from fashion_onnx.serve.batching import Batching
from fashion_onnx.serve.limits import Limits, Security
from fashion_onnx.serve.model import ServedModel

__all__ = [
    "App",
    "Batching",
    "Limits",
    "Security",
    "ServeError",
    "ServeSettings",
    "build_app",
    "run_server",
]


@dataclass(frozen=True)
class ServeSettings:
    """Everything a server (or a Ray Serve replica) needs to build its app. Picklable:
    models travel as bytes, so every Ray node gets the same files."""

    models: tuple[tuple[str, bytes], ...]  # (name, ONNX bytes), in the order served
    device: str = "auto"
    threads: int | None = 1  # onnxruntime intra-op threads, per batch computed
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
