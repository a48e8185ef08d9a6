"""The two architectures, and safe checkpoint loading that tells them apart by their keys.

- ``mlp``: the card's MLP, with the PyTorch quickstart's state_dict layout.
- ``cnn``: a small BatchNorm CNN for users who want fewer mistakes.

Both take float32 ``[N, 1, 28, 28]`` in [0, 1] (what ``ToTensor()`` gives) and return
logits ``[N, 10]``. A plain ``.pth`` says which it is through its keys, so a lone file
exports without any other record.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from fashion_onnx.constants import HIDDEN_FEATURES, INPUT_FEATURES, NUM_CLASSES
from fashion_onnx.errors import CheckpointError


class NeuralNetwork(nn.Module):
    """Flatten -> Linear(784,512) -> ReLU -> Linear(512,512) -> ReLU -> Linear(512,10).

    The attribute names and the Sequential indices are the quickstart's, so its
    ``model.pth`` loads here unchanged (``linear_relu_stack.0.weight`` ...).
    With ``dropout > 0`` each ReLU slot holds ``Sequential(ReLU, Dropout)`` instead:
    neither has parameters, so the state_dict keys do not move.
    """

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()

        def activation() -> nn.Module:
            return nn.Sequential(nn.ReLU(), nn.Dropout(dropout)) if dropout > 0 else nn.ReLU()

        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(INPUT_FEATURES, HIDDEN_FEATURES),
            activation(),
            nn.Linear(HIDDEN_FEATURES, HIDDEN_FEATURES),
            activation(),
            nn.Linear(HIDDEN_FEATURES, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(x)  # (N, 1, 28, 28) -> (N, 784)
        logits: torch.Tensor = self.linear_relu_stack(x)  # (N, 10)
        return logits


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    """3x3 convolution (no bias: BatchNorm has one), BatchNorm, ReLU; the size is kept."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
    )


class FashionCNN(nn.Module):
    """Five 3x3 conv blocks (BatchNorm, ReLU) and three max-pools, then one Linear.

    (N,1,28,28) -> 32 @28 -> pool -> 64, 64 @14 -> pool -> 128, 128 @7 -> pool -> (N,128,3,3)
    -> Flatten (1,152) -> Dropout -> Linear(1152, 10). 289,130 parameters, 21.9 M multiply-adds
    per image. Chosen by measurement on a 2-core CPU (see the README's model card): the
    cheapest shape tried that reached 93.5% within the time bound; a global-average-pool
    head was cheaper but lost 0.4 points.
    """

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_block(1, 32),
            nn.MaxPool2d(2),
            _conv_block(32, 64),
            _conv_block(64, 64),
            nn.MaxPool2d(2),
            _conv_block(64, 128),
            _conv_block(128, 128),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(128 * 3 * 3, NUM_CLASSES)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.features(x))  # (N, 10)
        return logits


ARCHITECTURES: dict[str, type[nn.Module]] = {"mlp": NeuralNetwork, "cnn": FashionCNN}
# How a state_dict says which architecture it is: the prefix of its keys.
_KEY_PREFIXES = {"mlp": "linear_relu_stack.", "cnn": "features."}
DESCRIPTIONS = {
    "mlp": "MLP Flatten-784-512-ReLU-512-ReLU-10 (PyTorch quickstart NeuralNetwork)",
    "cnn": "CNN 5x[Conv3x3-BatchNorm-ReLU] 32-M-64-64-M-128-128-M, Flatten-1152-Linear-10 "
    "(BatchNorm folded into the convolutions)",
}


def architecture_name(model: nn.Module) -> str:
    """ "cnn" for a FashionCNN, else "mlp"."""
    return "cnn" if isinstance(model, FashionCNN) else "mlp"


def architecture_of(state_dict: Mapping[str, object]) -> str | None:
    """ "mlp" or "cnn", read off the keys; None when they are neither's."""
    for arch, prefix in _KEY_PREFIXES.items():
        if any(key.startswith(prefix) for key in state_dict):
            return arch
    return None


def build_model(arch: str, dropout: float = 0.0) -> nn.Module:
    """A fresh model of ``arch`` ("mlp" or "cnn")."""
    try:
        return ARCHITECTURES[arch](dropout=dropout)
    except KeyError:
        raise CheckpointError(
            f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}"
        ) from None


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy with each Conv-BatchNorm pair fused into one Conv (same function);
    a model without BatchNorm comes back as it is. For export: the graph needs no BN."""
    if not isinstance(model, FashionCNN):
        return model
    folded = copy.deepcopy(model).eval()
    for block in folded.features:
        if isinstance(block, nn.Sequential):
            conv, bn = block[0], block[1]
            assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
            block[0] = fuse_conv_bn_eval(conv, bn)
            block[1] = nn.Identity()
    return folded


def state_dict_problems(state_dict: Mapping[str, object], model: nn.Module) -> list[str]:
    """List every missing, unexpected or mis-shaped key of ``state_dict`` against ``model``."""
    expected = model.state_dict()
    problems: list[str] = []
    for key in expected.keys() - state_dict.keys():
        problems.append(f"missing key {key!r} (expected shape {tuple(expected[key].shape)})")
    for key in state_dict.keys() - expected.keys():
        problems.append(f"unexpected key {key!r}")
    for key in expected.keys() & state_dict.keys():
        value = state_dict[key]
        if not isinstance(value, torch.Tensor):
            problems.append(f"key {key!r} holds {type(value).__name__}, not a tensor")
        elif value.shape != expected[key].shape:
            problems.append(
                f"key {key!r} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
    return sorted(problems)


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a .pth state_dict with ``torch.load(weights_only=True)``.

    Accepts a plain state_dict (what ``fashion-train`` and the quickstart save) and a
    dict that wraps one under ``"state_dict"`` or ``"model_state_dict"``.

    Raises:
        CheckpointError: the file is missing, empty, truncated, not a torch checkpoint,
            or a pickle that would run code (refused, never executed).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    data = path.read_bytes()
    if not data:
        raise CheckpointError(f"{path}: the file is empty (0 bytes), not a checkpoint")
    if not (data.startswith(b"PK\x03\x04") or data.startswith(b"\x80")):
        if data.startswith(b"\x08"):  # protobuf field 1, varint: an ONNX ModelProto
            raise CheckpointError(
                f"{path}: this is an ONNX model, not a PyTorch checkpoint: it is already "
                "exported (fashion-infer --model takes it); fashion-export takes the .pth "
                "that fashion-train writes"
            )
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint: neither torch.save's zip format "
            "nor a pickle"
        )
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines()]
        detail = next((line for line in lines if "Unsupported global" in line), lines[0])
        raise CheckpointError(
            f"{path}: refused to load: the file holds Python objects that are not plain "
            f"tensors, and loading them could run arbitrary code (weights_only=True). "
            f"Only load checkpoints you trust. Detail: {detail}"
        ) from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated, corrupt, or another "
            f"kind of file): {first}"
        ) from None
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state_dict")
    return obj


def load_model(path: str | os.PathLike[str]) -> nn.Module:
    """Load a checkpoint into a fresh model of its architecture (told by its keys), in eval
    mode: ``NeuralNetwork`` for the quickstart's MLP, ``FashionCNN`` for the CNN.

    Raises:
        CheckpointError: unreadable or unsafe file, or keys/shapes that do not match;
            the message lists every difference at once.
    """
    state_dict = load_state_dict_file(path)
    arch = architecture_of(state_dict) or "mlp"  # neither: list what the MLP would need
    model = build_model(arch)
    problems = state_dict_problems(state_dict, model)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        name = "MLP" if arch == "mlp" else "CNN"
        raise CheckpointError(
            f"{path}: not a state_dict of the FashionMNIST {name} ({len(problems)} problem(s)):\n"
            f"{listed}"
        )
    model.load_state_dict(state_dict)
    return model.eval()


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters (669,706 for the card's MLP, 289,130 for the CNN)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
