"""The training recipes on in-memory uint8 tensors, for both architectures.

- MLP: AdamW, one-cycle LR, inputs standardised during training and the standardisation
  folded into the first Linear afterwards (the saved model takes ToTensor inputs).
- CNN: SGD with Nesterov momentum, one-cycle LR, whole-batch augmentation (shifts and
  flips), channels-last, bfloat16 autocast where the hardware has it; BatchNorm sees the
  plain [0, 1] inputs.

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
from fashion_onnx.fashion_mnist import held_out
from fashion_onnx.gpu import gpu_present
from fashion_onnx.models import NeuralNetwork, build_model
from fashion_onnx.train import outliers
from fashion_onnx.train.config import TrainConfig
from fashion_onnx.train.data import FashionData, to_input

# FashionMNIST's pixel mean and std on [0, 1]. Training standardises inputs with them
# (it converges faster), then folds them into the first Linear so that the saved model
# takes plain ToTensor inputs, as the quickstart's does.
PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530
EVAL_BATCH = 4096  # the MLP's: eval has no backward pass; big batches are cheapest
# The CNN's: channels-last batches of 256 keep its activations in cache, about 3x the
# images/s of contiguous batches of 1,024 on the CPU (measured on an Intel Xeon, 2 cores).
CNN_EVAL_BATCH = 256
TRAIN_EVAL_ROWS = 10_000  # rows of the training set the per-class train accuracy is on
OUTLIER_POOL = 20_000  # synthetic outliers made per run (about 5 s); steps draw from them


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean training loss over the epoch (dropout on, outlier term added)
    test_loss: float  # mean cross-entropy on the test set (no smoothing)
    test_accuracy: float  # fraction in [0, 1]
    seconds: float  # wall time since training started


@dataclass
class TrainResult:
    model: nn.Module  # eval mode, on the CPU: takes ToTensor inputs
    config: TrainConfig
    device: str
    epochs: list[EpochMetrics] = field(default_factory=list)
    # per class, eval mode, on train_sample()'s rows
    train_class_accuracy: list[float] = field(default_factory=list)
    test_class_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    bf16: bool = False  # whether training ran under bfloat16 autocast

    @property
    def test_accuracy(self) -> float:
        return self.epochs[-1].test_accuracy

    def to_dict(self) -> dict[str, object]:
        return {
            "config": dataclasses.asdict(self.config),
            "arch": self.config.arch,
            "device": self.device,
            "bf16": self.bf16,
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


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX-512 BF16); on others the
    autocast is emulated and slower than float32."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            flags = next((line for line in info if line.startswith("flags")), "")
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def use_bf16(setting: str, device: torch.device) -> bool:
    if setting != "auto":
        return setting == "on"
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return cpu_has_bf16()


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(N, 1, 28, 28): flip half horizontally, shift each by up to 2 px (zeros come in).

    Whole-tensor work: one flip, one pad, and one slice per shift (25 in all).
    """
    n = len(images)
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.where(flip[:, None, None, None], images.flip(-1), images)
    pad = 2
    padded = F.pad(out, (pad, pad, pad, pad))
    side = 2 * pad + 1
    shift = torch.randint(0, side * side, (n,), generator=generator)
    for offset in range(side * side):
        rows = (shift == offset).nonzero().squeeze(1)
        dy, dx = divmod(offset, side)
        out[rows] = padded[rows, :, dy : dy + 28, dx : dx + 28]
    return out


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
    mlp = isinstance(model, NeuralNetwork)
    size = EVAL_BATCH if mlp else CNN_EVAL_BATCH
    layout = torch.contiguous_format if mlp else torch.channels_last
    loss_sum, hits = 0.0, torch.zeros(NUM_CLASSES)
    for start in range(0, len(images), size):
        x = to_input(images[start : start + size]).to(device, memory_format=layout)
        if normalize:
            x = (x - PIXEL_MEAN) / PIXEL_STD
        y = labels[start : start + size].to(device)
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


def train_sample(n: int) -> torch.Tensor:
    """Which of ``n`` training rows the per-class train accuracy is measured on:
    TRAIN_EVAL_ROWS of them, evenly spread, as many as the test set has, so that the
    plot's train and test bars are equally precise (about a point a class). All 54,000
    took the CNN about 33 s on an AMD EPYC (2 CPUs): two thirds of a 20-step smoke run."""
    count = min(n, TRAIN_EVAL_ROWS)
    return torch.arange(count) * n // count


def training_rows(data: FashionData, holdout: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images and labels a run learns from: all 60,000, or all but the
    ``fashion_mnist.held_out()`` slice that the export calibrates on."""
    if not holdout:
        return data.train_images, data.train_labels
    keep = torch.ones(len(data.train_images), dtype=torch.bool)
    keep[torch.from_numpy(held_out(len(data.train_images)))] = False
    return data.train_images[keep], data.train_labels[keep]


def uniform_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy from softmax(logits) to the uniform distribution: the outlier
    exposure loss, lowest when the model has no preference among the classes."""
    return -F.log_softmax(logits, dim=1).mean()


def outlier_inputs(images: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` outliers (``train.outliers.pool``) as float32 (N, 1, 28, 28) inputs;
    ``images`` are the training images the inverted share is drawn from."""
    made = outliers.pool(images.numpy(), count, seed)
    return to_input(torch.from_numpy(made))


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # SGD: no weight decay on BatchNorm's scales and on biases (the 1-d parameters).
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)


def train(
    data: FashionData,
    config: TrainConfig | None = None,
    *,
    on_step: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> TrainResult:
    """Train ``config.arch`` with its recipe.

    Args:
        data: both splits in memory (``load_fashion_mnist``).
        config: the recipe (``TrainConfig()``, the MLP's, when None).
        on_step: called as ``on_step(step, total_steps)`` after every optimizer step.
        on_epoch: called with each epoch's metrics.

    Returns:
        The trained model (eval mode, CPU, taking ToTensor inputs) and its metrics.

    Raises:
        DeviceError: ``config.device`` is cuda and torch cannot use CUDA.
    """
    config = config or TrainConfig()
    device = resolve_device(config.device)
    cnn = config.arch == "cnn"
    torch.manual_seed(config.seed)
    shuffle = torch.Generator().manual_seed(config.seed)
    jitter = torch.Generator().manual_seed(config.seed + 1)  # augmentation's own stream
    layout = torch.channels_last if cnn else torch.contiguous_format
    model = build_model(config.arch, dropout=config.dropout).to(device)
    model = model.to(memory_format=layout)
    bf16 = use_bf16(config.bf16, device)

    train_images, train_labels = training_rows(data, config.holdout)
    n = len(train_images)
    steps_per_epoch = -(-n // config.batch_size)
    total = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    epochs = -(-total // steps_per_epoch)

    optimizer = _optimizer(model, config)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total, pct_start=config.warmup
    )
    # Scale once: 188 MB of float32 beats per-sample ToTensor every epoch. The MLP is
    # trained on standardised inputs (folded into it afterwards); the CNN's BatchNorm
    # takes [0, 1] as it is.
    x_train = to_input(train_images)  # (N, 1, 28, 28)
    x_out = None
    if config.outliers > 0:  # no more than the run will draw: a smoke run makes a few
        count = min(OUTLIER_POOL, total * config.outlier_batch)
        x_out = outlier_inputs(train_images, count, config.seed + 2)
    if not cnn:
        x_train = (x_train - PIXEL_MEAN) / PIXEL_STD
        x_out = None if x_out is None else (x_out - PIXEL_MEAN) / PIXEL_STD
    x_device = x_train.to(device)
    y_train = train_labels.to(device)
    out_device = None if x_out is None else x_out.to(device)
    draw = torch.Generator().manual_seed(config.seed + 3)  # which outliers each step sees

    result = TrainResult(model=model, config=config, device=str(device), bf16=bf16)
    started, step = time.perf_counter(), 0
    test_classes: list[float] = []
    for epoch in range(1, epochs + 1):
        model.train()
        if config.augment:
            x_device = augment(x_train.clone(), jitter).to(device)
        order = torch.randperm(n, generator=shuffle).to(device)
        loss_sum, seen = 0.0, 0
        for start in range(0, n, config.batch_size):
            if step == total:
                break
            idx = order[start : start + config.batch_size]
            batch = x_device[idx]
            if out_device is not None:  # one pass over garments and outliers together
                pick = torch.randint(len(out_device), (config.outlier_batch,), generator=draw)
                batch = torch.cat([batch, out_device[pick.to(device)]])
            batch = batch.contiguous(memory_format=layout)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(batch).float()
            loss = F.cross_entropy(
                logits[: len(idx)], y_train[idx], label_smoothing=config.label_smoothing
            )
            if out_device is not None:
                loss = loss + config.outliers * uniform_cross_entropy(logits[len(idx) :])
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
            step += 1
            if on_step is not None:
                on_step(step, total)
        test_loss, test_acc, test_classes = evaluate(
            model, data.test_images, data.test_labels, normalize=not cnn
        )
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
    # Per class, in eval mode: the test set's from the last epoch's evaluation, the same
    # weights as the saved model's.
    result.test_class_accuracy = test_classes
    sample = train_sample(len(train_images))
    _, _, result.train_class_accuracy = evaluate(
        model, train_images[sample], train_labels[sample], normalize=not cnn
    )
    # The saved model is the plain architecture: same keys, no dropout, contiguous float32
    # tensors on the CPU, whatever device and layout trained it.
    plain = build_model(config.arch)
    plain.load_state_dict({k: v.cpu().contiguous() for k, v in model.state_dict().items()})
    if not cnn:
        assert isinstance(plain, NeuralNetwork)
        fold_input_normalization(plain, PIXEL_MEAN, PIXEL_STD)
    result.model = plain.eval()
    return result
