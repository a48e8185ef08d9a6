"""ONNX Runtime sessions: pick the execution provider, never falling back silently."""

from __future__ import annotations

import glob
import sys

import onnxruntime as ort

from fashion_onnx.errors import DeviceError, InvalidArgumentError, ModelError

DEVICES: tuple[str, ...] = ("auto", "cuda", "cpu")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def gpu_present() -> bool:
    """Whether a CUDA device could exist here. On Linux, no /dev/nvidia<N> means no GPU."""
    if sys.platform.startswith("linux"):
        return bool(glob.glob("/dev/nvidia[0-9]*"))
    return True


def session_options(threads: int | None, spinning: bool = True) -> ort.SessionOptions:
    """Options for every session. ``spinning=False`` stops idle engine threads from
    busy-waiting, which matters when decoder processes need the same cores."""
    options = ort.SessionOptions()
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # a chain of Gemms: no branches
    options.inter_op_num_threads = 1
    if threads is not None:
        if threads < 1:
            raise InvalidArgumentError(f"threads must be >= 1, got {threads}")
        options.intra_op_num_threads = threads
    return options


def _cuda_session(model: bytes, options: ort.SessionOptions) -> ort.InferenceSession | None:
    """A session on CUDA, or None when CUDA cannot be used here (quietly)."""
    if CUDA not in ort.get_available_providers() or not gpu_present():
        return None
    if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from the nvidia-* wheels, without torch
        try:
            ort.preload_dlls()
        except Exception:
            pass
    ort.set_default_logger_severity(4)  # a failed CUDA load is expected here, not news
    try:
        session = ort.InferenceSession(model, options, providers=[CUDA, CPU])
    except Exception:
        return None
    finally:
        ort.set_default_logger_severity(2)
    return session if session.get_providers()[0] == CUDA else None


def create_session(
    model: bytes, device: str, threads: int | None, spinning: bool = True, source: str = "model"
) -> ort.InferenceSession:
    """Create a session on ``device``; decide by the providers the session really got.

    Raises:
        DeviceError: ``device="cuda"`` and CUDA is not usable (never a silent fallback).
        ModelError: onnxruntime cannot load the bytes.
    """
    if device not in DEVICES:
        raise InvalidArgumentError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    options = session_options(threads, spinning)
    if device in ("auto", "cuda"):
        session = _cuda_session(model, options)
        if session is not None:
            return session
        if device == "cuda":
            raise DeviceError(
                "CUDA is not usable here "
                f"(GPU device found: {'yes' if gpu_present() else 'no'}; onnxruntime "
                f"{ort.__version__} offers {', '.join(ort.get_available_providers())}). "
                "Choose the CPU or automatic device instead."
            )
    try:
        return ort.InferenceSession(model, options, providers=[CPU])
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{source}: not a loadable ONNX model: {first}") from None
