import pytest

pytest.importorskip("torch", reason="needs the [train] extra")

from pathlib import Path

import torch

from fashion_onnx.errors import CheckpointError
from fashion_onnx.infer.contract import default_model_path
from fashion_onnx.models import NeuralNetwork, load_model, parameter_count
from tests.quickstart import NeuralNetwork as QuickstartNetwork


def test_state_dict_keys_and_shapes_match_the_quickstart() -> None:
    ours = {k: tuple(v.shape) for k, v in NeuralNetwork().state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in QuickstartNetwork().state_dict().items()}
    assert ours == theirs
    assert parameter_count(NeuralNetwork()) == 669_706


def test_dropout_keeps_the_quickstart_keys() -> None:
    assert NeuralNetwork(dropout=0.3).state_dict().keys() == QuickstartNetwork().state_dict().keys()
    model = NeuralNetwork(dropout=0.5).train()
    x = torch.rand(64, 1, 28, 28)
    assert not torch.equal(model(x), model(x)), "dropout is active in train()"
    model.eval()
    assert torch.equal(model(x), model(x)), "and the identity in eval()"


def test_a_quickstart_checkpoint_loads_and_predicts_the_same(tmp_path: Path) -> None:
    torch.manual_seed(0)
    quickstart = QuickstartNetwork().eval()
    path = tmp_path / "model.pth"
    torch.save(quickstart.state_dict(), path)  # exactly the seed's save line
    ours = load_model(path)
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(ours(x), quickstart(x))


def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pth"
    torch.save({"linear_relu_stack.0.weight": Payload()}, path)  # a .pth as torch writes it
    with pytest.raises(CheckpointError, match="could run arbitrary code") as info:
        load_model(path)
    assert str(path) in str(info.value)
    assert not marker.exists(), "the payload must not have run"


def test_wrong_keys_and_shapes_are_listed_together(tmp_path: Path) -> None:
    state = NeuralNetwork().state_dict()
    state["linear_relu_stack.0.weight"] = torch.zeros(512, 100)
    del state["linear_relu_stack.4.bias"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert "3 problem(s)" in message
    assert "'linear_relu_stack.0.weight' has shape (512, 100), expected (512, 784)" in message
    assert "missing key 'linear_relu_stack.4.bias'" in message
    assert "unexpected key 'extra.weight'" in message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"this is a text file, not a checkpoint\n", "not a readable PyTorch checkpoint"),
    ],
)
def test_non_checkpoints_get_a_clear_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "model.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=reason) as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_a_truncated_checkpoint_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    torch.save(NeuralNetwork().state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_model(path)


def test_a_missing_checkpoint_gets_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_model(tmp_path / "absent.pth")


def test_an_onnx_file_given_as_a_checkpoint_is_named_and_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    path.write_bytes(default_model_path().read_bytes())
    with pytest.raises(
        CheckpointError, match=f"{path}: this is an ONNX model, not a PyTorch checkpoint"
    ):
        load_model(path)
