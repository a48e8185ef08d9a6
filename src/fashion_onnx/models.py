"""The card's MLP, with the PyTorch quickstart's state_dict layout, and safe checkpoint loading."""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

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
        kind = " (it looks like an ONNX model)" if data.startswith(b"\x08") else ""
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint: neither torch.save's zip format "
            f"nor a pickle{kind}"
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


def load_model(path: str | os.PathLike[str]) -> NeuralNetwork:
    """Load a checkpoint into a fresh ``NeuralNetwork`` in eval mode.

    Raises:
        CheckpointError: unreadable or unsafe file, or keys/shapes that do not match;
            the message lists every difference at once.
    """
    state_dict = load_state_dict_file(path)
    model = NeuralNetwork()
    problems = state_dict_problems(state_dict, model)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise CheckpointError(
            f"{path}: not a state_dict of the FashionMNIST MLP ({len(problems)} problem(s)):\n"
            f"{listed}"
        )
    model.load_state_dict(state_dict)
    return model.eval()


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters (669,706 for the card's MLP)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
