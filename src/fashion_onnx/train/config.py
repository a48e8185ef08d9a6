"""The training recipe's settings. Torch-free, so the CLI can show defaults without torch."""

from __future__ import annotations

from dataclasses import dataclass

from fashion_onnx.errors import InvalidArgumentError


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (saved beside the .pth)."""

    epochs: int = 20  # passes over the 60,000 training images
    batch_size: int = 512  # images per optimizer step; large batches keep the CPU busy
    lr: float = 3e-3  # peak learning rate of the one-cycle schedule (AdamW)
    weight_decay: float = 0.05  # AdamW's decoupled weight decay
    dropout: float = 0.3  # after each hidden ReLU, training only; keys unchanged
    label_smoothing: float = 0.1  # cross-entropy target smoothing
    seed: int = 0  # seeds weights, shuffling and dropout
    device: str = "auto"  # auto | cpu | cuda
    max_steps: int | None = None  # stop after this many steps (smoke tests, --dry-run)

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps must be >= 1, got {self.max_steps}")
        if problems:
            raise InvalidArgumentError("invalid training config: " + "; ".join(problems))
