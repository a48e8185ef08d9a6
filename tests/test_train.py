import pytest

pytest.importorskip("torch", reason="needs the [train] extra")

from pathlib import Path

import torch

from fashion_onnx.errors import FashionOnnxError
from fashion_onnx.models import NeuralNetwork
from fashion_onnx.train.config import TrainConfig
from fashion_onnx.train.loop import evaluate, fold_input_normalization, train

SHORT = TrainConfig(max_steps=60)  # about half an epoch at batch 512


@pytest.fixture(scope="module")
def short_run(fashion_data):
    return train(fashion_data, SHORT)


def test_a_short_real_run_beats_chance_by_far(short_run, fashion_data) -> None:
    assert short_run.test_accuracy >= 0.80  # chance is 0.10
    assert len(short_run.epochs) == 1
    # The returned model is the plain, folded MLP: it scores the same on raw ToTensor input.
    _, accuracy, per_class = evaluate(
        short_run.model, fashion_data.test_images, fashion_data.test_labels
    )
    assert accuracy == pytest.approx(short_run.test_accuracy, abs=1e-4)
    assert len(per_class) == 10
    assert isinstance(short_run.model, NeuralNetwork)
    assert all(isinstance(m, torch.nn.ReLU) for m in short_run.model.linear_relu_stack[1::2])


def test_the_same_seed_gives_the_same_accuracy(short_run, fashion_data) -> None:
    again = train(fashion_data, SHORT)
    assert again.test_accuracy == short_run.test_accuracy
    for key, value in short_run.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key


def test_progress_callbacks_see_every_step(fashion_data) -> None:
    steps, epochs = [], []
    config = TrainConfig(max_steps=3, batch_size=64)
    train(fashion_data, config, on_step=lambda s, t: steps.append((s, t)), on_epoch=epochs.append)
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert [e.epoch for e in epochs] == [1]


def test_folding_the_normalisation_keeps_the_function() -> None:
    torch.manual_seed(1)
    model = NeuralNetwork().eval()
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        expected = model((x - 0.3) / 0.4)
        fold_input_normalization(model, 0.3, 0.4)
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", 0), ("batch_size", 0), ("lr", 0.0), ("dropout", 1.0), ("device", "tpu")],
)
def test_bad_config_is_refused_with_the_value(field: str, value: object) -> None:
    with pytest.raises(FashionOnnxError, match=f"{field} must"):
        TrainConfig(**{field: value})


def test_a_one_epoch_curve_has_whole_epoch_ticks_and_markers() -> None:
    from fashion_onnx.train.loop import EpochMetrics, TrainResult
    from fashion_onnx.train.plots import curves_figure

    result = TrainResult(
        model=torch.nn.Identity(),
        config=TrainConfig(epochs=1),
        device="cpu",
        epochs=[EpochMetrics(epoch=1, train_loss=0.8, test_loss=0.6, test_accuracy=0.8, seconds=2)],
    )
    fig = curves_figure(result)
    accuracy_axes = fig.axes[1]
    low, high = accuracy_axes.get_xlim()
    ticks = [t for t in accuracy_axes.get_xticks() if low <= t <= high]
    assert ticks == [1.0], ticks  # not 0.945 ... 1.050
    for axes in fig.axes:
        assert all(line.get_marker() == "o" for line in axes.get_lines())


def test_replot_draws_the_committed_runs_plots_without_training(tmp_path: Path) -> None:
    from fashion_onnx.train.plots import replot, result_from_record

    checkpoint = Path(__file__).resolve().parent.parent / "models" / "fashion_mlp.pth"
    result = result_from_record(checkpoint)
    assert len(result.epochs) == result.config.epochs == 20
    assert result.test_accuracy == 0.901
    paths = replot(checkpoint, tmp_path)
    assert sorted(p.name for p in paths) == [
        "class_accuracy.png",
        "test_samples.png",
        "training_curves.png",
    ]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_the_train_accuracy_is_measured_on_as_many_rows_as_the_test_set_spread_over_all() -> None:
    from fashion_onnx.train.loop import TRAIN_EVAL_ROWS, train_sample

    rows = train_sample(54_000)
    assert len(rows) == TRAIN_EVAL_ROWS == 10_000 and len(set(rows.tolist())) == 10_000
    assert rows.min() == 0 and rows.max() >= 54_000 - 6  # spread to the end
    assert train_sample(300).tolist() == list(range(300))  # a small set: all of it
