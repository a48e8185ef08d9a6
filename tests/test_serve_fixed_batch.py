"""fashion-serve runs a model through the package's one model runner, as fashion-infer
does: a valid model whose batch axis is fixed at 1 (what exporting with a batch-1 example
gives) classifies in fashion-infer, so it must answer a 3-image request here too (it got
HTTP 500: the server fed the session all 3 rows at once)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.test_serve import (
    Server,
    model_input,
    multipart,
    png,
    request,
    start_server,
    stop,
)

onnx = pytest.importorskip("onnx")
httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")

from fashion_onnx.eval.measures import softmax  # noqa: E402
from fashion_onnx.infer import Classifier  # noqa: E402
from fashion_onnx.infer.contract import default_model_path  # noqa: E402

N = 3
ATOL = 1e-5


def fixed_batch_model(path: Path, batch: int = 1) -> Path:
    """The embedded MLP with its batch axis fixed at ``batch``, in and out."""
    proto = onnx.load(str(default_model_path("mlp")))
    for value in (*proto.graph.input, *proto.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = batch
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def fixed_path(tmp_path_factory) -> Path:
    return fixed_batch_model(tmp_path_factory.mktemp("fixed") / "fixed.onnx")


@pytest.fixture(scope="module")
def fixed_server(fixed_path) -> Iterator[Server]:
    started = start_server("--model", f"fixed={fixed_path}")
    yield started
    stop(started)


@pytest.fixture(scope="module")
def images(test_set) -> np.ndarray:
    return test_set[0][:N]


@pytest.fixture(scope="module")
def embedded(images) -> dict[str, np.ndarray]:
    """The embedded model's outputs for the same images: its exact "probabilities" and
    the calibrated ones fashion-infer reports."""
    result = Classifier("mlp", device="cpu").predict(images)
    return {
        "probabilities": softmax(result.logits).astype(np.float32),
        "calibrated_probabilities": result.probabilities,
    }


def test_the_model_is_fixed_at_1_and_fashion_infer_classifies_with_it(
    fixed_path, images, embedded
) -> None:
    classifier = Classifier(fixed_path, device="cpu")
    assert classifier.runner.contract.fixed_batch == 1
    got = classifier.predict(images).probabilities
    np.testing.assert_allclose(got, embedded["calibrated_probabilities"], rtol=0, atol=ATOL)


def test_an_fp32_tensor_of_3_images(fixed_server, embedded, images) -> None:
    client = httpclient.InferenceServerClient(fixed_server.url)
    tensor = httpclient.InferInput("input", [N, 1, 28, 28], "FP32")
    tensor.set_data_from_numpy(model_input(images))
    result = client.infer("fixed", [tensor])
    for name, want in embedded.items():
        got = result.as_numpy(name)
        assert got.shape == (N, 10)
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


def test_a_bytes_tensor_of_3_png_files(fixed_server, embedded, images) -> None:
    client = httpclient.InferenceServerClient(fixed_server.url)
    tensor = httpclient.InferInput("image", [N], "BYTES")
    tensor.set_data_from_numpy(np.array([png(i) for i in images], dtype=np.object_))
    result = client.infer("fixed", [tensor])
    for name, want in embedded.items():
        np.testing.assert_allclose(result.as_numpy(name), want, rtol=0, atol=ATOL)


def test_a_json_request_of_3_images(fixed_server, embedded, images) -> None:
    body = {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": [N, 1, 28, 28],
                "data": model_input(images).ravel().tolist(),
            }
        ]
    }
    status, _, raw = request(
        fixed_server.port, "POST", "/v2/models/fixed/infer", json.dumps(body).encode()
    )
    assert status == 200, raw
    outputs = {o["name"]: o for o in json.loads(raw)["outputs"]}
    got = np.array(outputs["probabilities"]["data"], np.float32).reshape(N, 10)
    np.testing.assert_allclose(got, embedded["probabilities"], rtol=0, atol=ATOL)


def test_classify_3_files(fixed_server, embedded, images) -> None:
    body, content_type = multipart([(f"{i}.png", png(image)) for i, image in enumerate(images)])
    status, _, raw = request(
        fixed_server.port,
        "POST",
        "/v1/models/fixed/classify?top_k=10",
        body,
        {"Content-Type": content_type},
    )
    assert status == 200, raw
    results = json.loads(raw)["results"]
    assert [r["file"] for r in results] == [f"{i}.png" for i in range(N)]
    for row, want in zip(results, embedded["calibrated_probabilities"], strict=True):
        assert row["label"] == int(want.argmax())
        assert row["confidence"] == pytest.approx(float(want.max()), abs=ATOL)
        got = np.zeros(10, np.float32)
        for top in row["top_k"]:
            got[top["label"]] = top["probability"]
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
