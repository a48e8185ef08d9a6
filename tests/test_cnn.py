"""The second architecture through the same pipeline: train, export (BatchNorm folded,
verified on the real test set), quantize, and classify."""

import pytest

pytest.importorskip("torch", reason="needs the [train] extra")

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from fashion_onnx.errors import CheckpointError
from fashion_onnx.export import export_onnx
from fashion_onnx.models import FashionCNN, architecture_of, fold_batchnorm, load_model
from fashion_onnx.train.data import to_input

pytestmark = pytest.mark.slow  # trains a CNN for 300 steps and exports it


def test_a_short_real_cnn_run_beats_chance_by_far(cnn_checkpoint) -> None:
    record = json.loads(cnn_checkpoint.with_suffix(".json").read_text())
    assert record["arch"] == "cnn"
    assert record["test_accuracy"] >= 0.75  # chance is 0.10; 150 steps reach 0.82
    state = torch.load(cnn_checkpoint, weights_only=True)
    assert architecture_of(state) == "cnn"
    assert all(t.device.type == "cpu" and t.is_contiguous() for t in state.values())
    assert isinstance(load_model(cnn_checkpoint), FashionCNN)


def test_the_cnn_export_matches_torch_on_the_full_test_set(
    cnn_exported, cnn_checkpoint, fashion_data
) -> None:
    parity = cnn_exported.parity
    assert cnn_exported.architecture == "cnn"
    assert parity.data == "FashionMNIST test set" and parity.batch_sizes == (1, 2, 7, 64, 10_000)
    assert parity.max_abs_logits <= cnn_exported.atol
    assert parity.onnx_accuracy == parity.torch_accuracy
    images = to_input(fashion_data.test_images).numpy()
    session = ort.InferenceSession(cnn_exported.path, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = load_model(cnn_checkpoint)(torch.from_numpy(images)).numpy()
    for batch in (1, 2, 7, 64):
        got = np.concatenate(
            [
                session.run(["logits"], {"input": images[i : i + batch]})[0]
                for i in range(0, 700, batch)
            ]
        )
        assert np.abs(got - want[: len(got)]).max() <= cnn_exported.atol


def test_batchnorm_is_folded_into_the_convolutions(cnn_exported, cnn_checkpoint) -> None:
    graph = onnx.load(cnn_exported.path).graph
    ops = {node.op_type for node in graph.node}
    assert "BatchNormalization" not in ops and "Conv" in ops
    meta = ort.InferenceSession(cnn_exported.path).get_modelmeta().custom_metadata_map
    assert meta["architecture"].startswith("CNN") and "BatchNorm folded" in meta["architecture"]
    model = load_model(cnn_checkpoint)
    x = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(model)(x), model(x), atol=1e-5, rtol=1e-5)


def test_cnn_int8_stays_within_half_a_point_and_reports_its_choice(cnn_exported) -> None:
    by_precision = {v.precision: v for v in cnn_exported.variants}
    int8 = by_precision["int8"]
    assert int8.accuracy_delta_points >= -0.5
    assert int8.method in ("dynamic", "static")
    assert {c["method"] for c in int8.candidates} == {"dynamic", "static"}
    # The kept method is the faster (at batch 64) of those within the bound, by the
    # report's own figures: keeping the slower one fails here.
    speedup = {c["method"]: c["speedup_batch64"] for c in int8.candidates}
    drop = {c["method"]: -c["accuracy_delta_points"] for c in int8.candidates}
    within = [m for m in speedup if drop[m] <= 0.5]
    assert int8.method == max(within, key=speedup.__getitem__)
    assert int8.choice.startswith(f"{int8.method}: the faster within 0.5 points")
    assert by_precision["fp16"].accuracy_delta_points >= -0.1


def test_a_cnn_checkpoint_with_a_missing_and_a_misshaped_key_lists_both(tmp_path: Path) -> None:
    state = FashionCNN().state_dict()
    del state["features.0.1.running_var"]
    state["classifier.2.weight"] = torch.zeros(10, 100)
    path = tmp_path / "cnn.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert "not a state_dict of the FashionMNIST CNN (2 problem(s))" in message
    assert "missing key 'features.0.1.running_var'" in message
    assert "'classifier.2.weight' has shape (10, 100), expected (10, 1152)" in message


def test_a_lone_cnn_pth_exports(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = FashionCNN().eval()
    path = tmp_path / "lone.pth"
    torch.save(model.state_dict(), path)  # no JSON beside it
    report = export_onnx(path, tmp_path / "lone.onnx", use_real_data=False)
    assert report.architecture == "cnn" and report.parity.argmax_agreement == 1.0
