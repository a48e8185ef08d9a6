"""fashion-serve --engine ray on a real two-node Ray cluster (ray.cluster_utils.Cluster):
replicas on both nodes answer, with the same protocol and the same probabilities. All
traffic stays on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytestmark = pytest.mark.slow
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # Ray advertises and listens on 127.0.0.1
os.environ.update(LOOPBACK)  # read when ray is imported: before the import below
# The cluster's nodes inherit this environment. Ray Serve gives its HTTP proxy 5 s to say
# it is ready, three times, then kills it, and the deploy fails ("The actor died
# unexpectedly"): in CI, beside the other tests on 2 CPUs, the proxy's start took longer.
os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
pytest.importorskip("ray.serve", reason="ray[serve] is not installed")
httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")

from fashion_onnx.eval.measures import softmax  # noqa: E402
from fashion_onnx.infer import Classifier  # noqa: E402
from tests.test_serve import free_port, model_input, request  # noqa: E402

IMAGES = 300


@pytest.fixture(scope="module")
def cluster():
    """A head with no CPU and two worker nodes of one CPU each: one replica fits a node."""
    from ray.cluster_utils import Cluster

    started = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    nodes = [started.add_node(num_cpus=1) for _ in range(2)]
    started.wait_for_nodes()
    yield started, {n.node_id for n in nodes}
    started.shutdown()


@pytest.fixture(scope="module")
def served(cluster):
    """``fashion-serve --engine ray --replicas 2`` joined to that cluster."""
    started, _ = cluster
    port = free_port()
    env = {**os.environ, **LOOPBACK}
    env.pop("RAY_ADDRESS", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fashion_onnx.serve",
            "--engine",
            "ray",
            "--ray-address",
            started.address,
            "--replicas",
            "2",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
        try:
            if request(port, "GET", "/v2/health/ready")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.5)
    else:
        process.kill()
        raise AssertionError("Ray Serve did not become ready in 180 s")
    yield process, port
    if process.poll() is None:
        process.kill()


def test_replicas_on_both_nodes_answer_with_parity(cluster, served, test_set) -> None:
    _, worker_nodes = cluster
    _, port = served
    images = test_set[0][:IMAGES]
    client = httpclient.InferenceServerClient(f"127.0.0.1:{port}")
    for name in ("mlp", "cnn"):
        assert client.get_model_metadata(name)["parameters"]["class_names"][0] == "T-shirt/top"
        tensor = httpclient.InferInput("input", [IMAGES, 1, 28, 28], "FP32")
        tensor.set_data_from_numpy(model_input(images))
        got = client.infer(name, [tensor]).as_numpy("probabilities")
        # the files' exact "probabilities" output (Classifier reports the calibrated ones)
        expected = softmax(Classifier(name).predict(images).logits).astype(np.float32)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)

    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": [8, 1, 28, 28],
                    "data": model_input(images[:8]).reshape(-1).tolist(),
                }
            ]
        }
    ).encode()

    def one(_: int) -> tuple[str, np.ndarray]:
        status, headers, raw = request(port, "POST", "/v2/models/mlp/infer", body)
        assert status == 200, raw
        outputs = {o["name"]: o for o in json.loads(raw)["outputs"]}
        return headers["x-fashion-serve-node"], np.array(outputs["probabilities"]["data"])

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(64)))
    assert {node for node, _ in answers} == worker_nodes
    expected = softmax(Classifier("mlp").predict(images[:8]).logits).astype(np.float32)
    expected = expected.reshape(-1)  # the exact output, as above
    for _, probs in answers:
        np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-6)
    # The same limits as the local server.
    status, _, raw = request(port, "POST", "/v2/models/mlp/infer", b'{"inputs": [')
    assert status == 400 and "malformed JSON" in json.loads(raw)["error"]


def test_sigterm_takes_the_application_down_and_exits_0(served) -> None:
    process, port = served
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    with pytest.raises(OSError):
        request(port, "GET", "/v2/health/live")
