"""fashion-serve as a real process on 127.0.0.1, driven by Triton's own HTTP client
(tritonclient, from PyPI) and by plain HTTP: the v2 protocol in JSON and binary with parity
against ``Classifier.predict`` on 1,000 real test images, multipart uploads, every bad
request the server must refuse with a 4xx while staying ready, token auth, and SIGTERM
with requests in flight."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")
pytest.importorskip("uvicorn", reason="the [serve] extra is not installed")

from fashion_onnx.eval.measures import softmax  # noqa: E402
from fashion_onnx.infer import Classifier  # noqa: E402

N = 1000
MODELS = ("mlp", "cnn")
TOKEN = "s3cret-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png() -> bytes:
    """A tiny PNG whose header claims 30,000 x 30,000 pixels (over the 40 M limit)."""
    data = bytearray(png(np.zeros((1, 1), np.uint8)))
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", 30_000, 30_000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_server(*args: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fashion_onnx.serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *args,
        ],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"fashion-serve exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            if request(port, "GET", "/v2/health/ready")[0] == 200:
                return Server(process, port)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("fashion-serve did not become ready in 60 s")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(15)
        except subprocess.TimeoutExpired:
            server.process.kill()


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """One server for the protocol and the bad-request tests; small limits to reach."""
    started = start_server(
        "--max-body",
        "4MB",
        "--max-batch-images",
        str(N),
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
    )
    yield started
    stop(started)


@pytest.fixture(scope="session")
def images(test_set) -> np.ndarray:
    return test_set[0][:N]


@pytest.fixture(scope="session")
def expected(images) -> dict[str, np.ndarray]:
    # the files' exact "probabilities" output (Classifier reports the calibrated ones)
    return {m: softmax(Classifier(m).predict(images).logits).astype(np.float32) for m in MODELS}


def model_input(images: np.ndarray) -> np.ndarray:
    """What the file's contract asks: float32 (n, 1, 28, 28), pixel / 255."""
    return (images.astype(np.float32) / np.float32(255)).reshape(-1, 1, 28, 28)


# -- the protocol, with Triton's client ------------------------------------------------


def test_metadata_and_health_through_tritonclient(server) -> None:
    client = httpclient.InferenceServerClient(server.url)
    assert client.is_server_live() and client.is_server_ready()
    for name in MODELS:
        assert client.is_model_ready(name)
        meta = client.get_model_metadata(name)
        assert meta["name"] == name
        assert {"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]} in meta["inputs"]
        assert {"name": "image", "datatype": "BYTES", "shape": [-1]} in meta["inputs"]
        assert [o["name"] for o in meta["outputs"]] == [
            "logits",
            "probabilities",
            "calibrated_probabilities",
        ]
        assert all(o["datatype"] == "FP32" and o["shape"] == [-1, 10] for o in meta["outputs"])
        assert meta["parameters"]["class_names"][0] == "T-shirt/top"
        assert len(meta["parameters"]["class_names"]) == 10
    assert not client.is_model_ready("nope")


@pytest.mark.parametrize("name", MODELS)
def test_binary_infer_on_1000_images_matches_the_classifier(server, images, expected, name):
    client = httpclient.InferenceServerClient(server.url)
    tensor = httpclient.InferInput("input", [N, 1, 28, 28], "FP32")
    tensor.set_data_from_numpy(model_input(images))  # binary by default
    result = client.infer(
        name,
        [tensor],
        outputs=[httpclient.InferRequestedOutput("probabilities")],
        request_id="batch-7",
    )
    probs = result.as_numpy("probabilities")
    assert result.get_response()["id"] == "batch-7"
    assert result.as_numpy("logits") is None  # only the requested output
    assert probs.shape == (N, 10)
    np.testing.assert_allclose(probs, expected[name], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_json_infer_on_1000_images_matches_the_classifier(server, images, expected, name):
    client = httpclient.InferenceServerClient(server.url)
    got = []
    for start in range(0, N, 250):  # 250 images of JSON text fit --max-body 4MB
        chunk = model_input(images[start : start + 250])
        tensor = httpclient.InferInput("input", list(chunk.shape), "FP32")
        tensor.set_data_from_numpy(chunk, binary_data=False)
        outputs = [
            httpclient.InferRequestedOutput(o, binary_data=False)
            for o in ("logits", "probabilities")
        ]
        result = client.infer(name, [tensor], outputs=outputs)
        assert all("data" in o for o in result.get_response()["outputs"])  # JSON, not binary
        logits = result.as_numpy("logits")
        soft = np.exp(logits - logits.max(1, keepdims=True))
        np.testing.assert_allclose(
            soft / soft.sum(1, keepdims=True), result.as_numpy("probabilities"), atol=1e-6
        )
        got.append(result.as_numpy("probabilities"))
    np.testing.assert_allclose(np.concatenate(got), expected[name], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_image_files_as_a_bytes_tensor_match_the_classifier_on_the_same_files(
    server, images, expected, name, tmp_path_factory
) -> None:
    files = [png(image) for image in images]
    client = httpclient.InferenceServerClient(server.url)
    tensor = httpclient.InferInput("image", [N], "BYTES")
    tensor.set_data_from_numpy(np.array(files, dtype=np.object_))
    result = client.infer(name, [tensor])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected[name], rtol=0, atol=1e-6)
    # A photo (light background, larger than 28x28) is prepared as fashion-infer does.
    photo = np.full((90, 70), 250, np.uint8)
    photo[20:70, 20:50] = 30
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    path.write_bytes(png(photo))
    tensor = httpclient.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([path.read_bytes()], dtype=np.object_))
    got = client.infer(name, [tensor]).as_numpy("probabilities")
    want = softmax(Classifier(name).predict([path]).logits)  # the exact output
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_json_bytes_elements_are_base64(server, images, expected) -> None:
    body = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [2],
                "data": [base64.b64encode(png(i)).decode() for i in images[:2]],
            }
        ]
    }
    status, _, raw = request(server.port, "POST", "/v2/models/mlp/infer", json.dumps(body).encode())
    assert status == 200, raw
    outputs = {o["name"]: o for o in json.loads(raw)["outputs"]}
    got = np.array(outputs["probabilities"]["data"], np.float32).reshape(2, 10)
    np.testing.assert_allclose(got, expected["mlp"][:2], atol=1e-6)


# -- multipart, for curl users ------------------------------------------------------------


def multipart(files: list[tuple[str, bytes]], field: str = "file") -> tuple[bytes, str]:
    boundary = "fashionboundary7MA4YWxk"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in files
    ]
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_multipart_with_good_and_bad_files(server, images, expected) -> None:
    good = png(images[0])
    files = [
        ("a.png", good),
        ("empty.png", b""),
        ("text.png", b"not an image"),
        ("cut.png", good[: len(good) // 2]),
        ("bomb.png", bomb_png()),
        ("b.png", png(images[1])),
    ]
    body, content_type = multipart(files)
    status, _, raw = request(
        server.port, "POST", "/v1/models/cnn/classify?top_k=3", body, {"Content-Type": content_type}
    )
    assert status == 200, raw
    results = json.loads(raw)["results"]
    assert [r["file"] for r in results] == [name for name, _ in files]
    reported = Classifier("cnn").predict(images[:2]).probabilities  # calibrated
    # calibration changes them (T = 1.11: by 5.6e-4 on these two sure answers), far beyond
    # the 1e-6 the rows are compared at below
    assert np.abs(reported - expected["cnn"][:2]).max() > 1e-4, "calibration changes them"
    for row, index in ((results[0], 0), (results[5], 1)):
        probs = reported[index]  # as fashion-infer reports them
        assert row["label"] == int(probs.argmax())
        assert row["class"] == Classifier("cnn").class_names[int(probs.argmax())]
        assert row["confidence"] == pytest.approx(float(probs.max()), abs=1e-6)
        assert [t["label"] for t in row["top_k"]] == list(np.argsort(-probs, kind="stable")[:3])
        assert [t["probability"] for t in row["top_k"]] == pytest.approx(
            np.sort(probs)[::-1][:3].tolist(), abs=1e-6
        )
    assert results[1]["error"] == "empty file (0 bytes)"
    assert results[2]["error"] == "not an image Pillow can read"
    assert results[3]["error"].startswith("truncated or corrupt image")
    assert results[4]["error"].startswith("decompression bomb refused")
    assert all("label" not in r for r in results[1:5])


def test_multipart_whose_files_are_all_unreadable_is_422_with_each_error(server) -> None:
    body, content_type = multipart([("x.png", b""), ("y.png", b"GIF89a-cut")])
    status, _, raw = request(
        server.port, "POST", "/v1/models/mlp/classify", body, {"Content-Type": content_type}
    )
    assert status == 422
    answer = json.loads(raw)
    assert answer["error"] == "none of the files could be read"
    assert [r["file"] for r in answer["results"]] == ["x.png", "y.png"]
    assert all(r["error"] for r in answer["results"])


# -- bad requests: a 4xx, a one-line JSON error, and the server stays ready ---------------

INFER = "/v2/models/mlp/infer"
ONE = {"name": "input", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": [0.0] * 784}


def infer_json(**change) -> bytes:
    return json.dumps({"inputs": [{**ONE, **change}]}).encode()


def binary_body(
    header_length: str | None, cut: int = 0, n: int = 1
) -> tuple[bytes, dict[str, str]]:
    header = json.dumps(
        {
            "inputs": [
                {
                    **{k: v for k, v in ONE.items() if k != "data"},
                    "shape": [n, 1, 28, 28],
                    "parameters": {"binary_data_size": n * 784 * 4},
                }
            ]
        }
    ).encode()
    body = header + np.zeros(n * 784, np.float32).tobytes()
    headers = {"Content-Type": "application/octet-stream"}
    if header_length is not None:
        headers["Inference-Header-Content-Length"] = header_length.replace("LEN", str(len(header)))
    return body[: len(body) - cut], headers


def form(files: list[tuple[str, bytes]], field: str = "file") -> tuple[bytes, dict[str, str]]:
    body, content_type = multipart(files, field)
    return body, {"Content-Type": content_type}


BAD_REQUESTS = {
    "json cut short": ("POST", INFER, b'{"inputs": [', {}, 400),
    "NaN is not JSON": ("POST", INFER, infer_json().replace(b"0.0,", b"NaN,", 1), {}, 400),
    "Infinity is not JSON": (
        "POST",
        INFER,
        infer_json().replace(b"0.0,", b"Infinity,", 1),
        {},
        400,
    ),
    "a number too large for a float": (
        "POST",
        INFER,
        infer_json().replace(b"0.0,", b"1e999,", 1),
        {},
        400,
    ),
    "not an object": ("POST", INFER, b"[1, 2]", {}, 400),
    "wrong tensor name": ("POST", INFER, infer_json(name="pixels"), {}, 400),
    "wrong datatype": ("POST", INFER, infer_json(datatype="INT64"), {}, 400),
    "wrong shape": ("POST", INFER, infer_json(shape=[1, 784], data=[0.0] * 784), {}, 400),
    "data short of the shape": ("POST", INFER, infer_json(data=[0.0] * 783), {}, 400),
    "data that are not numbers": ("POST", INFER, infer_json(data=["a"] * 784), {}, 400),
    "unknown output": (
        "POST",
        INFER,
        json.dumps({"inputs": [ONE], "outputs": [{"name": "x"}]}).encode(),
        {},
        400,
    ),
    "binary header length missing": ("POST", INFER, *binary_body(None), 400),
    "binary header length not a number": ("POST", INFER, *binary_body("twelve"), 400),
    "binary header length past the body": ("POST", INFER, *binary_body("99999"), 400),
    "binary data short of binary_data_size": ("POST", INFER, *binary_body("LEN", cut=4), 400),
    "unknown model": ("POST", "/v2/models/resnet/infer", infer_json(), {}, 404),
    "unknown model metadata": ("GET", "/v2/models/resnet", None, {}, 404),
    "unknown route": ("GET", "/v3/everything", None, {}, 404),
    "a method the route does not take": ("GET", INFER, None, {}, 405),
    "delete metadata": ("DELETE", "/v2/models/mlp", None, {}, 405),
    "top_k 0": ("POST", "/v1/models/mlp/classify?top_k=0", *form([("a.png", b"")]), 400),
    "top_k 11": ("POST", "/v1/models/mlp/classify?top_k=11", *form([("a.png", b"")]), 400),
    "top_k not a number": ("POST", "/v1/models/mlp/classify?top_k=x", *form([("a.png", b"")]), 400),
    "no file fields": (
        "POST",
        "/v1/models/mlp/classify",
        *form([("a.png", b"")], field="other"),
        400,
    ),
    "not multipart": (
        "POST",
        "/v1/models/mlp/classify",
        b"{}",
        {"Content-Type": "application/json"},
        415,
    ),
    "empty image bytes": (
        "POST",
        INFER,
        json.dumps(
            {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [""]}]}
        ).encode(),
        {},
        422,
    ),
    "foreign image bytes": (
        "POST",
        INFER,
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "BYTES",
                        "shape": [1],
                        "data": [base64.b64encode(b"%PDF-1.4").decode()],
                    }
                ]
            }
        ).encode(),
        {},
        422,
    ),
    "a decompression bomb": (
        "POST",
        INFER,
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "BYTES",
                        "shape": [1],
                        "data": [base64.b64encode(bomb_png()).decode()],
                    }
                ]
            }
        ).encode(),
        {},
        422,
    ),
    "BYTES that are not base64": (
        "POST",
        INFER,
        json.dumps(
            {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["**"]}]}
        ).encode(),
        {},
        400,
    ),
    "a body over --max-body": ("POST", INFER, b"x" * (4 * 1024 * 1024 + 1), {}, 413),
    "more images than --max-batch-images": ("POST", INFER, *binary_body("LEN", n=N + 1), 413),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_gets_its_4xx_and_the_server_stays_ready(server, case) -> None:
    method, path, body, headers, expected_status = BAD_REQUESTS[case]
    status, reply_headers, raw = request(server.port, method, path, body, headers)
    assert status == expected_status, raw
    assert reply_headers["content-type"] == "application/json"
    message = json.loads(raw)["error"]
    assert message and "\n" not in message and "Traceback" not in message
    assert request(server.port, "GET", "/v2/health/ready")[0] == 200


def test_slow_clients_get_408_for_headers_and_for_bodies(server) -> None:
    for partial in (
        b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n",  # headers never end
        b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
    ):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(partial)
            started = time.monotonic()
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert time.monotonic() - started < 5
    assert request(server.port, "GET", "/v2/health/ready")[0] == 200


def test_metrics_count_requests_and_batches(server) -> None:
    request(server.port, "POST", INFER, infer_json())
    request(server.port, "GET", "/v2/models/resnet")
    status, headers, raw = request(server.port, "GET", "/metrics")
    text = raw.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert 'fashion_serve_requests_total{model="mlp",code="200"}' in text
    assert 'fashion_serve_requests_total{model="",code="404"}' in text  # no label from the client
    assert 'fashion_serve_request_seconds_bucket{model="mlp",le="+Inf"}' in text
    count = [
        line
        for line in text.splitlines()
        if line.startswith('fashion_serve_batch_size_count{model="mlp"}')
    ]
    assert count and int(count[0].split()[-1]) >= 1


def requests_counted(port: int, model: str, code: int) -> int:
    """fashion_serve_requests_total{model, code} from GET /metrics (0 if absent)."""
    text = request(port, "GET", "/metrics")[2].decode()
    key = f'fashion_serve_requests_total{{model="{model}",code="{code}"}} '
    return sum(int(line[len(key) :]) for line in text.splitlines() if line.startswith(key))


def test_metrics_count_a_malformed_request_under_the_model_in_its_path(server) -> None:
    """A 400 for /v2/models/mlp/infer is the MLP's error, not model="" (#32)."""
    mlp, nobody = requests_counted(server.port, "mlp", 400), requests_counted(server.port, "", 400)
    assert request(server.port, "POST", INFER, b'{"inputs": [')[0] == 400
    assert request(server.port, "POST", "/v2/models/mlp/versions/1/infer", b"[1, 2]")[0] == 400
    body, headers = form([("a.png", b"")], field="other")
    assert request(server.port, "POST", "/v1/models/mlp/classify", body, headers)[0] == 400
    assert requests_counted(server.port, "mlp", 400) == mlp + 3
    assert requests_counted(server.port, "", 400) == nobody


# -- security ---------------------------------------------------------------------------


def test_a_token_is_required_when_set(images, expected) -> None:
    secured = start_server("--cors", "https://shop.example", env={"FASHION_SERVE_TOKEN": TOKEN})
    try:
        port = secured.port
        assert request(port, "GET", "/v2/health/ready")[0] == 200  # probes stay open
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            status, reply_headers, raw = request(port, "GET", "/v2/models/mlp", None, headers)
            assert status == 401 and reply_headers["www-authenticate"] == "Bearer"
            assert "token" in json.loads(raw)["error"]
        assert request(port, "GET", "/metrics")[0] == 401
        client = httpclient.InferenceServerClient(secured.url)
        tensor = httpclient.InferInput("input", [2, 1, 28, 28], "FP32")
        tensor.set_data_from_numpy(model_input(images[:2]))
        with pytest.raises(Exception, match="token"):
            client.infer("mlp", [tensor])
        result = client.infer("mlp", [tensor], headers={"Authorization": f"Bearer {TOKEN}"})
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected["mlp"][:2], atol=1e-6)
        # CORS: the named origin only.
        status, reply_headers, _ = request(
            port, "GET", "/v2/health/live", None, {"Origin": "https://shop.example"}
        )
        assert reply_headers["access-control-allow-origin"] == "https://shop.example"
        _, reply_headers, _ = request(
            port, "GET", "/v2/health/live", None, {"Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in reply_headers
    finally:
        stop(secured)


def test_cors_is_off_by_default(server) -> None:
    _, headers, _ = request(
        server.port, "GET", "/v2/health/live", None, {"Origin": "https://a.example"}
    )
    assert not any(k.startswith("access-control") for k in headers)


# -- SIGTERM ----------------------------------------------------------------------------


def test_sigterm_answers_the_requests_in_flight_then_exits_0(images) -> None:
    served = start_server()
    body_header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": [N, 1, 28, 28],
                    "parameters": {"binary_data_size": N * 784 * 4},
                }
            ]
        }
    ).encode()
    body = body_header + model_input(images).tobytes()
    connections = []
    for _ in range(12):  # 12,000 CNN images: seconds of engine work
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        connection.request(
            "POST",
            "/v2/models/cnn/infer",
            body=body,
            headers={"Inference-Header-Content-Length": str(len(body_header))},
        )
        connections.append(connection)
    time.sleep(0.3)
    served.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    statuses = [c.getresponse() for c in connections]
    answers = [(r.status, json.loads(r.read())) for r in statuses]
    assert served.process.wait(10) == 0
    assert time.monotonic() - signalled < 10
    assert all(status == 200 for status, _ in answers)
    assert all(a["outputs"][0]["shape"] == [N, 10] for _, a in answers)
    with pytest.raises(OSError):
        request(served.port, "GET", "/v2/health/live")


def raw_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one response to its end (the server closes the connection after it)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def test_sigterm_lets_bodies_still_arriving_arrive_and_answers_a_stalled_one_503() -> None:
    """After SIGTERM, a request whose body is still arriving is answered once it is in;
    one whose body stops arriving gets a JSON 503 (connection: close) before the server
    exits, not uvicorn's plain-text 500 and a traceback in the log (#32)."""
    served = start_server()
    body = infer_json()
    head = (
        f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    finishing, stalled = (
        socket.create_connection(("127.0.0.1", served.port), timeout=20) for _ in range(2)
    )
    with finishing, stalled:
        for sock in (finishing, stalled):
            sock.sendall(head + body[:100])
        time.sleep(0.3)  # both requests are in the app, reading their bodies
        served.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(0.5)
        finishing.sendall(body[100:])
        status, headers, raw = raw_response(finishing)
        assert status == 200, raw
        assert json.loads(raw)["outputs"][0]["shape"] == [1, 10]
        status, headers, raw = raw_response(stalled)
    assert status == 503, raw
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert "shutting down" in json.loads(raw)["error"]
    assert served.process.wait(15) == 0
    assert time.monotonic() - signalled < 10
    log = served.process.stderr.read().decode()  # type: ignore[union-attr]
    assert "Traceback" not in log and "ERROR" not in log, log


def test_a_request_cancelled_by_the_shutdown_gets_503_not_500() -> None:
    """What uvicorn cancels when the graceful shutdown's time runs out is answered with a
    JSON 503 by the app (uvicorn's own answer is a plain-text 500 and a traceback)."""
    import asyncio

    from fashion_onnx.serve.asgi import App

    async def scenario(shutting_down: bool) -> list[dict]:
        app = App({})

        async def never_answers(*args: object) -> None:
            await asyncio.Event().wait()

        app.routes.handle = never_answers  # type: ignore[method-assign]
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "method": "POST", "path": INFER, "headers": []}
        task = asyncio.get_running_loop().create_task(app(scope, receive, send))
        await asyncio.sleep(0.01)
        if shutting_down:
            app.drain()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            assert not shutting_down, "a cancel outside a shutdown is not swallowed"
        return sent

    sent = asyncio.run(scenario(shutting_down=True))
    assert sent[0]["status"] == 503
    assert "send it again" in json.loads(sent[1]["body"])["error"]
    assert asyncio.run(scenario(shutting_down=False)) == []
