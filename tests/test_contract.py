"""Any model that keeps the contract works: other tensor names, logits only, a fixed batch
axis, other input scaling and polarity. Each is built from the embedded model and must
classify real test images exactly as the embedded model does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fashion_onnx.infer import Classifier
from fashion_onnx.infer import cli as infer_cli
from fashion_onnx.infer.contract import default_model_path

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from fashion_onnx.eval.measures import softmax  # noqa: E402

runner = CliRunner()


def _embedded():  # a fresh copy of the embedded model's proto
    return onnx.load(str(default_model_path()))


def _rename(graph, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in (*graph.input, *graph.output):
        if value.name == old:
            value.name = new


def _set_metadata(proto, **props: str) -> None:
    for prop in proto.metadata_props:
        if prop.key in props:
            prop.value = props[prop.key]


def _save(proto, path: Path) -> Path:
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def reference(test_set) -> np.ndarray:
    return Classifier(device="cpu").predict(test_set[0]).probabilities


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    built = {}

    # Another input name, as other exporters write it.
    proto = _embedded()
    _rename(proto.graph, "input", "input.1")
    built["input.1"] = _save(proto, folder / "input_1.onnx")

    # Input "x" and a single output "scores" holding logits: probabilities by softmax.
    proto = _embedded()
    _rename(proto.graph, "input", "x")
    _rename(proto.graph, "logits", "scores")
    keep = [o for o in proto.graph.output if o.name == "scores"]
    del proto.graph.output[:]
    proto.graph.output.extend(keep)
    built["logits only"] = _save(proto, folder / "logits_only.onnx")

    # A batch axis fixed at 1 (what exporting with a batch-1 example gives).
    proto = _embedded()
    proto.graph.input[0].type.tensor_type.shape.dim[0].Clear()
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    built["fixed batch 1"] = _save(proto, folder / "batch1.onnx")

    # Wants pixel bytes 0..255 of light-background images: its graph inverts and scales
    # in front of the original network, and its metadata says so.
    proto = _embedded()
    _rename(proto.graph, "input", "x01")
    raw = helper.make_tensor_value_info("raw", TensorProto.FLOAT, ["N", 1, 28, 28])
    proto.graph.initializer.extend([helper.make_tensor("k255", TensorProto.FLOAT, [], [255.0])])
    front = [
        helper.make_node("Sub", ["k255", "raw"], ["dark255"]),
        helper.make_node("Div", ["dark255", "k255"], ["x01"]),
    ]
    nodes = list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(front + nodes)
    del proto.graph.input[:]
    proto.graph.input.extend([raw])
    _set_metadata(
        proto, input_scale=json.dumps({"divide_by": 1.0, "range": [0, 255]}), background="light"
    )
    built["light 0..255"] = _save(proto, folder / "light_255.onnx")
    return built


@pytest.mark.parametrize("name", ["input.1", "logits only", "fixed batch 1", "light 0..255"])
def test_a_contract_keeping_model_classifies_like_the_embedded_one(
    name, models, test_set, reference
) -> None:
    images, labels = test_set
    if name == "fixed batch 1":
        images, reference = images[:300], reference[:300]  # one engine call per image
    with pytest.warns(UserWarning) if name == "logits only" else _no_warning():
        classifier = Classifier(models[name], device="cpu")
    got = classifier.predict(images).probabilities
    assert (got.argmax(1) == reference.argmax(1)).all()
    if name == "logits only":  # numpy's softmax against the graph's exact probabilities
        # (the embedded model reports calibrated_probabilities; this copy has no such output)
        exact = softmax(Classifier(device="cpu").predict(images).logits)
        np.testing.assert_allclose(got, exact, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, reference)
    assert (got.argmax(1) == labels[: len(got)]).mean() > 0.89


def fixed_batch_model(folder: Path) -> Path:
    """The embedded MLP with its batch axis fixed at 1 (as a batch-1 export gives)."""
    proto = _embedded()
    proto.graph.input[0].type.tensor_type.shape.dim[0].Clear()
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    return _save(proto, folder / "batch1.onnx")


def test_fashion_infer_runs_a_fixed_batch_model_in_its_workers(test_set, tmp_path) -> None:
    """300 files: worker processes, each with its own runner, fed one image a call."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(300):
        Image.fromarray(test_set[0][i], mode="L").save(images / f"{i:03d}.png")
    model = fixed_batch_model(tmp_path)
    rows = {}
    for which in (model, default_model_path()):
        result = runner.invoke(
            infer_cli.app,
            [str(images), "--model", str(which), "--format", "csv", "--workers", "2"],
        )
        assert result.exit_code == 0, result.output
        rows[which] = result.stdout
    assert rows[model] == rows[default_model_path()]


def test_the_cli_reads_the_light_model_through_its_metadata(models, test_set, tmp_path) -> None:
    for i in range(40):
        Image.fromarray(test_set[0][i], mode="L").save(tmp_path / f"{i:02d}.png")
    rows = {}
    for model in (default_model_path(), models["light 0..255"], models["input.1"]):
        result = runner.invoke(
            infer_cli.app, [str(tmp_path), "--model", str(model), "--format", "jsonl"]
        )
        assert result.exit_code == 0, result.output
        rows[model] = sorted((json.loads(line) for line in result.stdout.splitlines()), key=str)
    first, *others = rows.values()
    assert all(other == first for other in others)


class _no_warning:
    def __enter__(self) -> None:
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)
