"""The training recipe: AdamW + one-cycle LR on in-memory uint8 tensors.

The library returns values; progress reaches the caller through callbacks, so only
the CLI prints.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from fashion_onnx.constants import NUM_CLASSES
from fashion_onnx.errors import DeviceError
from fashion_onnx.gpu import gpu_present
from fashion_onnx.models import NeuralNetwork
from fashion_onnx.train.config import TrainConfig
from fashion_onnx.train.data import FashionData, to_input

# FashionMNIST's pixel mean and std on [0, 1]. Training standardises inputs with them
# (it converges faster), then folds them into the first Linear so that the saved model
# takes plain ToTensor inputs, as the quickstart's does.
PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530
EVAL_BATCH = 4096  # eval has no backward pass; big batches are cheapest


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean training loss over the epoch (dropout on, labels smoothed)
    test_loss: float  # mean cross-entropy on the test set (no smoothing)
    test_accuracy: float  # fraction in [0, 1]
    seconds: float  # wall time since training started


@dataclass
class TrainResult:
    model: NeuralNetwork  # folded, eval mode, on the CPU: takes ToTensor inputs
    config: TrainConfig
    device: str
    epochs: list[EpochMetrics] = field(default_factory=list)
    train_class_accuracy: list[float] = field(default_factory=list)  # per class, eval mode
    test_class_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def test_accuracy(self) -> float:
        return self.epochs[-1].test_accuracy

    def to_dict(self) -> dict[str, object]:
        return {
            "config": dataclasses.asdict(self.config),
            "device": self.device,
            "epochs": [dataclasses.asdict(e) for e in self.epochs],
            "test_accuracy": self.test_accuracy,
            "train_class_accuracy": self.train_class_accuracy,
            "test_class_accuracy": self.test_class_accuracy,
            "seconds": self.seconds,
        }


def torch_cuda_problem() -> str | None:
    """Why torch cannot use CUDA here, in one line; None when it can."""
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is a CPU-only build"
    if torch.cuda.is_available():
        return None
    try:
        torch.empty(0, device="cuda")  # raises with the driver's own reason
    except Exception as exc:
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    return "torch sees no CUDA GPU"


def resolve_device(device: str) -> torch.device:
    """cpu; cuda, or DeviceError with the reason; auto: cuda when torch can use it, else the
    CPU, with a one-line warning when a GPU is present but unusable (never silently).
    """
    if device == "cpu":
        return torch.device("cpu")
    problem = torch_cuda_problem()
    if problem is None:
        return torch.device("cuda")
    if device == "cuda":
        raise DeviceError(f"CUDA is not usable by torch here: {problem}")
    if gpu_present():
        warnings.warn(
            f"a GPU is present but torch cannot use CUDA, so training on the CPU: {problem}",
            stacklevel=2,
        )
    return torch.device("cpu")


def fold_input_normalization(model: NeuralNetwork, mean: float, std: float) -> None:
    """Rewrite the first Linear so model(x) equals the trained model((x - mean) / std).

    W((x - m)/s) + b = (W/s) x + (b - m * sum_j W_ij / s).
    """
    first = model.linear_relu_stack[0]
    assert isinstance(first, nn.Linear), "the quickstart MLP starts with Linear(784, 512)"
    with torch.no_grad():
        first.weight.div_(std)
        first.bias.sub_(mean * first.weight.sum(dim=1))


@torch.inference_mode()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, normalize: bool = False
) -> tuple[float, float, list[float]]:
    """Return (mean loss, accuracy, per-class accuracy) of ``model`` on uint8 images."""
    model.eval()
    device = next(model.parameters()).device
    loss_sum, hits = 0.0, torch.zeros(NUM_CLASSES)
    for start in range(0, len(images), EVAL_BATCH):
        x = to_input(images[start : start + EVAL_BATCH]).to(device)
        if normalize:
            x = (x - PIXEL_MEAN) / PIXEL_STD
        y = labels[start : start + EVAL_BATCH].to(device)
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        right = (logits.argmax(1) == y).cpu()
        hits += torch.bincount(y.cpu()[right], minlength=NUM_CLASSES).float()
    counts = torch.bincount(labels, minlength=NUM_CLASSES).float()
    return (
        loss_sum / len(images),
        hits.sum().item() / len(images),
        (hits / counts.clamp(min=1)).tolist(),
    )


def train(
    data: FashionData,
    config: TrainConfig | None = None,
    *,
    on_step: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> TrainResult:
    """Train the card's MLP.

    Args:
        data: both splits in memory (``load_fashion_mnist``).
        config: the recipe (``TrainConfig()`` when None).
        on_step: called as ``on_step(step, total_steps)`` after every optimizer step.
        on_epoch: called with each epoch's metrics.

    Returns:
        The trained model (normalisation folded in, eval mode, CPU) and its metrics.

    Raises:
        DeviceError: ``config.device`` is cuda and torch sees no GPU.
    """
    config = config or TrainConfig()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    shuffle = torch.Generator().manual_seed(config.seed)
    model = NeuralNetwork(dropout=config.dropout).to(device)

    n = len(data.train_images)
    steps_per_epoch = -(-n // config.batch_size)
    total = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    epochs = -(-total // steps_per_epoch)

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    # Scale and standardise once: 188 MB of float32 beats per-sample ToTensor every epoch.
    x_train = ((to_input(data.train_images) - PIXEL_MEAN) / PIXEL_STD).to(device)  # (N, 1, 28, 28)
    y_train = data.train_labels.to(device)

    result = TrainResult(model=model, config=config, device=str(device))
    started, step = time.perf_counter(), 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=shuffle).to(device)
        loss_sum, seen = 0.0, 0
        for start in range(0, n, config.batch_size):
            if step == total:
                break
            idx = order[start : start + config.batch_size]
            logits = model(x_train[idx])
            loss = F.cross_entropy(logits, y_train[idx], label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
            step += 1
            if on_step is not None:
                on_step(step, total)
        test_loss, test_acc, _ = evaluate(model, data.test_images, data.test_labels, normalize=True)
        metrics = EpochMetrics(
            epoch=epoch,
            train_loss=loss_sum / max(seen, 1),
            test_loss=test_loss,
            test_accuracy=test_acc,
            seconds=time.perf_counter() - started,
        )
        result.epochs.append(metrics)
        if on_epoch is not None:
            on_epoch(metrics)

    result.seconds = time.perf_counter() - started
    # The saved model is the plain MLP: same keys, no dropout slots.
    plain = NeuralNetwork()
    plain.load_state_dict(model.cpu().state_dict())
    fold_input_normalization(plain, PIXEL_MEAN, PIXEL_STD)
    result.model = model = plain.eval()
    _, _, result.train_class_accuracy = evaluate(model, data.train_images, data.train_labels)
    _, _, result.test_class_accuracy = evaluate(model, data.test_images, data.test_labels)
    return result
