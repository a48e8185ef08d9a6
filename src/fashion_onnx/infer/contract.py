"""The model contract: what an ONNX file must look like, and what its metadata asks of inputs.

Any model with one float input ``[N, 1, 28, 28]`` and outputs ``[N, 10]`` works, whatever
its tensors are called: the names come from the session, the input scaling and polarity
from the metadata (with documented defaults), and probabilities come from an output named
``calibrated_probabilities`` (files exported since #24: softmax(logits / T), the confidence
reported), else ``probabilities``, else a softmax of the first output. The logits, for the
energy OOD score, come from ``logits`` or from that first output.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fashion_onnx.constants import (
    CALIBRATED_NAME,
    CLASS_NAMES,
    DEFAULT_BACKGROUND,
    DEFAULT_DIVIDE_BY,
    IMAGE_SIZE,
    META_BACKGROUND,
    META_CLASS_NAMES,
    META_INPUT_SCALE,
    META_OOD_THRESHOLD,
    META_TEMPERATURE,
    NUM_CLASSES,
    OUTPUT_NAMES,
)
from fashion_onnx.errors import ModelError

if TYPE_CHECKING:  # imported for real by runtime.py, which says how to install it if missing
    import onnxruntime as ort

# The models shipped inside the package, by name; "mlp" (the card's) is the default.
EMBEDDED = {"mlp": "fashion_mlp.onnx", "cnn": "fashion_cnn.onnx"}
LOGITS, PROBABILITIES = OUTPUT_NAMES


def default_model_path(name: str = "mlp") -> Path:
    """An embedded model's file (their figures are in the README's model card); ``name``
    in any case.

    Raises:
        ModelError: ``name`` is not one of ``EMBEDDED``.
    """
    try:
        return Path(str(resources.files("fashion_onnx") / "assets" / EMBEDDED[name.lower()]))
    except KeyError:
        raise ModelError(_not_embedded(name)) from None


def read_model(model: str | os.PathLike[str] | bytes | None) -> tuple[bytes, str]:
    """(model bytes, a name for messages). None, "mlp" or "cnn" (any case) name an embedded
    model (a file of that name in the working directory does not shadow it); anything
    else is a path.

    Raises:
        ModelError: the file is missing, unreadable, empty, or a PyTorch checkpoint (the
            message says to export it first); a missing file's message names the embedded
            models, and the closest one for a near miss (``mpl``).
    """
    if isinstance(model, bytes):
        data, source = model, "<bytes>"
    else:
        if model is None or (isinstance(model, str) and model.lower() in EMBEDDED):
            path = default_model_path(model or "mlp")
        else:
            path = Path(model)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(_not_embedded(str(path))) from None
        except IsADirectoryError:
            raise ModelError(f"{path}: is a directory, not an ONNX file") from None
        except OSError as exc:
            raise ModelError(f"{path}: cannot read: {exc.strerror}") from None
        source = str(path)
    if not data:
        raise ModelError(f"{source}: empty file (0 bytes), not an ONNX model")
    if is_pytorch_checkpoint(data):
        raise ModelError(
            f"{source}: a PyTorch checkpoint, not an ONNX model: run "
            f"fashion-export {source} -o model.onnx first, and use model.onnx"
        )
    return data, source


def _not_embedded(name: str) -> str:
    """The message for a missing model file: it names the embedded models, and the
    closest one to a bare name (``mpl`` -> mlp)."""
    import difflib  # only on this error's path

    choices = list(EMBEDDED)
    hint = f"the embedded models are {', '.join(choices[:-1])} and {choices[-1]}"
    bare = Path(name)
    if bare.name == name:  # no folder given: maybe a misspelt embedded name
        close = difflib.get_close_matches(bare.stem.lower(), choices, n=1, cutoff=0.6)
        if close:
            hint += f": did you mean {close[0]}?"
    return f"{name}: no such model file ({hint})"


# What torch.save writes: a ZIP archive holding ``<name>/data.pkl``, or (before PyTorch
# 1.6, and with _use_new_zipfile_serialization=False) a pickle of its magic number first.
_ZIP = b"PK\x03\x04"
_LEGACY_TORCH = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def is_pytorch_checkpoint(data: bytes) -> bool:
    """Whether ``data`` is a file ``torch.save`` wrote (an ONNX file starts otherwise)."""
    if data.startswith(_LEGACY_TORCH):
        return True
    if not data.startswith(_ZIP):
        return False
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(name.endswith("data.pkl") for name in archive.namelist())
    except zipfile.BadZipFile:
        return False


@dataclass(frozen=True)
class ModelContract:
    """What inference needs to know about one model, read from its session and metadata."""

    input_name: str  # the session's own input name ("input" for our files)
    output_name: str  # the output that is read: calibrated_probabilities, else probabilities
    softmax: bool  # True when that output holds logits, not probabilities
    fixed_batch: int | None  # the batch size a model with a fixed batch axis insists on
    class_names: tuple[str, ...]  # index = label
    divide_by: float  # model input = pixel byte / divide_by
    background: str  # "dark" (light garment on dark, like FashionMNIST) or "light"
    warnings: tuple[str, ...]  # metadata that was missing or malformed (defaults used)
    logits_name: str | None = None  # the output holding logits (energy score); None: none
    ood_threshold: float | None = None  # energy above which a row abstains (metadata)
    temperature: float | None = None  # T of calibrated_probabilities (metadata)

    def model_input(self, images: np.ndarray) -> np.ndarray:
        """Images as FashionMNIST has them -> the float32 (n, 1, 28, 28) this model wants.

        Args:
            images: (n, 28, 28), light garment on a dark background; uint8 pixel bytes,
                or floats in [0, 1] (pixel / 255).
        """
        if images.dtype == np.uint8:
            x = images.astype(np.float32)  # pixel bytes, 0..255
            if self.background == "light":
                np.subtract(np.float32(255), x, out=x)
            np.divide(x, np.float32(self.divide_by), out=x)
        else:
            x = images.astype(np.float32)  # pixel / 255
            if self.background == "light":
                np.subtract(np.float32(1), x, out=x)
            if self.divide_by != 255:
                np.multiply(x, np.float32(255 / self.divide_by), out=x)
        return x.reshape(len(x), 1, IMAGE_SIZE, IMAGE_SIZE)

    def probabilities(self, output: np.ndarray) -> np.ndarray:
        """The model's output (n, 10) -> probabilities (n, 10) float32."""
        if self.softmax:
            shifted = np.exp(output - output.max(axis=1, keepdims=True))
            output = shifted / shifted.sum(axis=1, keepdims=True)
        return output.astype(np.float32, copy=False)


def _signature(session: ort.InferenceSession) -> str:
    ins = ", ".join(f"{i.name} {i.type} {i.shape}" for i in session.get_inputs())
    outs = ", ".join(f"{o.name} {o.type} {o.shape}" for o in session.get_outputs())
    return f"inputs [{ins}] -> outputs [{outs}]"


def _fits(shape: list[Any], tail: list[int]) -> bool:
    """``shape`` is [batch, *tail]; the batch axis may be named, unknown or a number."""
    return len(shape) == len(tail) + 1 and list(shape[1:]) == tail


def _metadata(meta: dict[str, str]) -> tuple[tuple[str, ...], float, str, list[str]]:
    """(class names, divide_by, background, problems) with a default for each bad field."""
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
        if not 0 < divide_by < float("inf"):
            raise ValueError
    except (KeyError, ValueError, TypeError):
        problems.append(f"{META_INPUT_SCALE} missing or malformed; using pixel / 255")
        divide_by = DEFAULT_DIVIDE_BY
    background = meta.get(META_BACKGROUND, "")
    if background not in ("dark", "light"):
        problems.append(f"{META_BACKGROUND} missing or malformed; assuming a dark background")
        background = DEFAULT_BACKGROUND
    return class_names, divide_by, background, problems


def check_contract(session: ort.InferenceSession, source: str) -> ModelContract:
    """Refuse a model that is not [N,1,28,28] float -> [N,10]; read its metadata with defaults.

    Raises:
        ModelError: the signature differs; the message gives the expected and found ones.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    ok = (
        len(inputs) == 1
        and inputs[0].type == "tensor(float)"
        and _fits(inputs[0].shape, [1, IMAGE_SIZE, IMAGE_SIZE])
        and len(outputs) >= 1
        and all(o.type == "tensor(float)" and _fits(o.shape, [NUM_CLASSES]) for o in outputs)
    )
    if not ok:
        raise ModelError(
            f"{source}: wrong model signature. Expected inputs [input tensor(float) "
            f"['N', 1, 28, 28]] -> outputs [[N, 10], ...]; found {_signature(session)}"
        )
    names = [o.name for o in outputs]
    read = [n for n in (CALIBRATED_NAME, PROBABILITIES) if n in names]
    output_name = read[0] if read else names[0]
    batch = inputs[0].shape[0]
    class_names, divide_by, background, problems = _metadata(
        session.get_modelmeta().custom_metadata_map
    )
    softmax = not read
    if softmax:
        problems.append(f"no {PROBABILITIES!r} output; applying softmax to {output_name!r}")
    meta = session.get_modelmeta().custom_metadata_map
    threshold, temperature = _number(meta, META_OOD_THRESHOLD), _number(meta, META_TEMPERATURE)
    for key, value in ((META_OOD_THRESHOLD, threshold), (META_TEMPERATURE, temperature)):
        if key in meta and value is None:
            problems.append(f"{key} malformed; ignored")
    return ModelContract(
        input_name=inputs[0].name,
        output_name=output_name,
        softmax=softmax,
        fixed_batch=batch if isinstance(batch, int) and batch > 0 else None,
        class_names=class_names,
        divide_by=divide_by,
        background=background,
        warnings=tuple(problems),
        logits_name=LOGITS if LOGITS in names else output_name if softmax else None,
        ood_threshold=threshold,
        temperature=temperature,
    )


def _number(meta: dict[str, str], key: str) -> float | None:
    """A finite number in the metadata, else None."""
    try:
        value = float(meta[key])
    except (KeyError, ValueError):
        return None
    return value if np.isfinite(value) else None
