"""ONNX Runtime sessions on CUDA or the CPU, chosen by what really works, never silently.

- ``cpu``: the CPU provider.
- ``cuda``: CUDA or a ``DeviceError`` that says why not.
- ``auto``: CUDA when it works. Where there is certainly no GPU (no NVIDIA device node)
  it takes the CPU quietly, without loading any CUDA library; where a GPU is there but
  CUDA fails, it takes the CPU and warns once with the reason and the fix.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
import warnings

from fashion_onnx.constants import DEVICES
from fashion_onnx.errors import DeviceError, InvalidArgumentError, MissingExtraError, ModelError
from fashion_onnx.gpu import gpu_present

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
CPU_INSTALL = "pip install 'fashion-onnx[cpu]'"
GPU_INSTALL = "pip install 'fashion-onnx[gpu]'"  # onnxruntime-gpu with CUDA 13 and cuDNN 9 wheels
# TF32 off: Hopper and Ampere would otherwise round the MLP's fp32 matrix products to a
# 10-bit mantissa, and CUDA must give the CPU's probabilities (within 1e-5), as the
# export verification promises. The model is far too small for TF32 to pay.
CUDA_OPTIONS = {"use_tf32": "0"}
SWITCH_TO_GPU = f"pip uninstall -y onnxruntime onnxruntime-gpu && {GPU_INSTALL}"

try:
    import onnxruntime as ort
except ModuleNotFoundError as exc:
    raise MissingExtraError(
        "fashion-onnx needs ONNX Runtime and none is installed: run "
        f"{CPU_INSTALL} (or {GPU_INSTALL} on a machine with an NVIDIA GPU)"
    ) from exc


def installed_runtimes() -> list[str]:
    """The ONNX Runtime distributions installed (both at once overwrite each other's files)."""
    from importlib import metadata  # 10 ms of imports: only where CUDA may be used

    found = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            metadata.distribution(dist)
            found.append(dist)
    return found


def cuda_problem() -> tuple[str, str] | None:
    """(why CUDA cannot run here, the command that fixes it); None when it should run.

    Only called where a GPU may be present: it loads the CUDA libraries.
    """
    runtimes = installed_runtimes()
    if len(runtimes) > 1:
        return "both onnxruntime and onnxruntime-gpu are installed", SWITCH_TO_GPU
    if CUDA not in ort.get_available_providers():
        runtime = ", ".join(runtimes) or "unknown"
        return f"this onnxruntime ({runtime}) has no CUDA provider", SWITCH_TO_GPU
    if hasattr(ort, "preload_dlls"):  # CUDA and cuDNN from the nvidia-* wheels, when installed
        with contextlib.redirect_stdout(io.StringIO()):  # it prints; stdout is our output
            with contextlib.suppress(Exception):
                ort.preload_dlls()
    provider = os.path.join(os.path.dirname(ort.__file__), "capi", _provider_library())
    try:
        ctypes.CDLL(provider)  # what onnxruntime would load; its error names the missing piece
    except OSError as exc:
        return _first_line(exc), GPU_INSTALL
    return None


def _provider_library() -> str:
    return (
        "onnxruntime_providers_cuda.dll"
        if sys.platform == "win32"
        else ("libonnxruntime_providers_cuda.so")
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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


def _cuda_session(
    model: bytes, options: ort.SessionOptions, source: str
) -> ort.InferenceSession | tuple[str, str]:
    """A session that really runs on CUDA, or (why not, the fix)."""
    problem = cuda_problem()
    if problem is not None:
        return problem
    try:
        session = ort.InferenceSession(model, options, providers=[(CUDA, CUDA_OPTIONS), CPU])
    except Exception as exc:
        if "INVALID_PROTOBUF" in str(exc) or "INVALID_GRAPH" in str(exc):
            raise ModelError(f"{source}: not a loadable ONNX model: {_first_line(exc)}") from None
        return _first_line(exc), GPU_INSTALL
    if session.get_providers()[0] != CUDA:
        return "onnxruntime placed the model on the CPU (its log says why)", GPU_INSTALL
    return session


def create_session(
    model: bytes, device: str, threads: int | None, spinning: bool = True, source: str = "model"
) -> ort.InferenceSession:
    """Create a session on ``device``; decide by the providers the session really got.

    Raises:
        DeviceError: ``device="cuda"`` and CUDA is not usable; the message says why.
        ModelError: onnxruntime cannot load the bytes.
        InvalidArgumentError: an unknown device or a thread count below 1.

    Warns:
        UserWarning: ``device="auto"``, a GPU is present, but CUDA failed: the reason and
            the command that fixes it, in one line.
    """
    if device not in DEVICES:
        raise InvalidArgumentError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    options = session_options(threads, spinning)
    if device == "cuda" or (device == "auto" and gpu_present()):
        if device == "cuda" and not gpu_present():
            raise DeviceError(
                "CUDA is not usable here: no NVIDIA GPU device found (/dev/nvidia*, /dev/dxg)"
            )
        cuda = _cuda_session(model, options, source)
        if not isinstance(cuda, tuple):
            return cuda
        reason, fix = cuda
        if device == "cuda":
            raise DeviceError(f"CUDA is not usable here: {reason}. Fix: {fix}")
        warnings.warn(
            f"a GPU is present but CUDA is not usable, so running on the CPU: {reason}. Fix: {fix}",
            stacklevel=3,
        )
    try:
        return ort.InferenceSession(model, options, providers=[CPU])
    except Exception as exc:
        raise ModelError(f"{source}: not a loadable ONNX model: {_first_line(exc)}") from None
