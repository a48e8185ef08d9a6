"""ONNX Runtime sessions: pick the execution provider, check the model's contract, read metadata."""

from __future__ import annotations

import glob
import json
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import onnxruntime as ort

from fashion_onnx.constants import (
    CLASS_NAMES,
    DEFAULT_BACKGROUND,
    DEFAULT_DIVIDE_BY,
    IMAGE_SIZE,
    META_BACKGROUND,
    META_CLASS_NAMES,
    META_INPUT_SCALE,
    NUM_CLASSES,
    OUTPUT_NAMES,
)
from fashion_onnx.errors import DeviceError, ModelError

Device = Literal["auto", "cuda", "cpu"]
DEVICES: tuple[str, ...] = ("auto", "cuda", "cpu")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEFAULT_MODEL_NAME = "fashion_mlp.onnx"


def default_model_path() -> Path:
    """The model shipped inside the package (see MODEL_CARD.md)."""
    return Path(str(resources.files("fashion_onnx") / "assets" / DEFAULT_MODEL_NAME))


@dataclass(frozen=True)
class ModelContract:
    """What inference needs to know about a model, read from its metadata."""

    class_names: tuple[str, ...]
    divide_by: float  # input float = pixel byte / divide_by
    background: str  # "dark": light garment on dark, like FashionMNIST; or "light"
    output_name: str  # which output holds probabilities
    warnings: tuple[str, ...]  # metadata that was missing or malformed (defaults used)


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
            raise ValueError(f"threads must be >= 1, got {threads}")
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
    model: bytes, device: str, threads: int | None, spinning: bool = True
) -> ort.InferenceSession:
    """Create a session on ``device``; decide by the providers the session really got.

    Raises:
        DeviceError: ``device="cuda"`` and CUDA is not usable (never a silent fallback).
        ModelError: onnxruntime cannot load the bytes.
    """
    if device not in DEVICES:
        raise DeviceError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    options = session_options(threads, spinning)
    if device in ("auto", "cuda"):
        session = _cuda_session(model, options)
        if session is not None:
            return session
        if device == "cuda":
            raise DeviceError(
                "--device cuda: CUDA is not usable here "
                f"(GPU device found: {'yes' if gpu_present() else 'no'}; onnxruntime "
                f"{ort.__version__} offers {', '.join(ort.get_available_providers())}). "
                "Use --device cpu or --device auto."
            )
    try:
        return ort.InferenceSession(model, options, providers=[CPU])
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"not a loadable ONNX model: {first}") from None


def _signature(session: ort.InferenceSession) -> str:
    ins = ", ".join(f"{i.name} {i.type} {i.shape}" for i in session.get_inputs())
    outs = ", ".join(f"{o.name} {o.type} {o.shape}" for o in session.get_outputs())
    return f"inputs [{ins}] -> outputs [{outs}]"


def check_contract(session: ort.InferenceSession, source: str) -> ModelContract:
    """Refuse a model that is not [N,1,28,28] float -> [N,10]; read its metadata with defaults.

    Raises:
        ModelError: the signature differs; the message gives the expected and found ones.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()

    def fits(shape: list[object], tail: list[int]) -> bool:
        return len(shape) == len(tail) + 1 and list(shape[1:]) == tail

    ok = (
        len(inputs) == 1
        and inputs[0].type == "tensor(float)"
        and fits(inputs[0].shape, [1, IMAGE_SIZE, IMAGE_SIZE])
        and len(outputs) >= 1
        and all(fits(o.shape, [NUM_CLASSES]) for o in outputs)
    )
    if not ok:
        raise ModelError(
            f"{source}: wrong model signature. Expected inputs [input tensor(float) "
            f"['N', 1, 28, 28]] -> outputs [[N, 10], ...]; found {_signature(session)}"
        )
    names = [o.name for o in outputs]
    output_name = OUTPUT_NAMES[1] if OUTPUT_NAMES[1] in names else names[0]
    meta = session.get_modelmeta().custom_metadata_map
    problems: list[str] = []
    class_names = CLASS_NAMES
    try:
        found = json.loads(meta[META_CLASS_NAMES])
        if not (isinstance(found, list) and len(found) == NUM_CLASSES):
            raise ValueError
        class_names = tuple(str(n) for n in found)
    except (KeyError, ValueError):
        problems.append(f"{META_CLASS_NAMES} missing or malformed; using FashionMNIST's names")
    divide_by = DEFAULT_DIVIDE_BY
    try:
        divide_by = float(json.loads(meta[META_INPUT_SCALE])["divide_by"])
        if not divide_by > 0:
            raise ValueError
    except (KeyError, ValueError, TypeError):
        problems.append(f"{META_INPUT_SCALE} missing or malformed; using pixel / 255")
        divide_by = DEFAULT_DIVIDE_BY
    background = meta.get(META_BACKGROUND, "")
    if background not in ("dark", "light"):
        problems.append(f"{META_BACKGROUND} missing or malformed; assuming a dark background")
        background = DEFAULT_BACKGROUND
    if output_name != OUTPUT_NAMES[1]:
        problems.append(f"no {OUTPUT_NAMES[1]!r} output; applying softmax to {output_name!r}")
    return ModelContract(class_names, divide_by, background, output_name, tuple(problems))


def read_model(model: str | os.PathLike[str] | bytes | None) -> tuple[bytes, str]:
    """(model bytes, a name for messages). None means the embedded default model.

    Raises:
        ModelError: the file is missing, unreadable or empty.
    """
    if isinstance(model, bytes):
        return model, "<bytes>"
    path = default_model_path() if model is None else Path(model)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a directory, not an ONNX file") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read: {exc.strerror}") from None
    if not data:
        raise ModelError(f"{path}: empty file (0 bytes), not an ONNX model")
    return data, str(path)
