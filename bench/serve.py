"""Serving: fashion-serve against the server a user would write, under wrk.

The baseline (``baseline_app``, below) is a Starlette route on uvicorn, one process, that
decodes each request with Pillow (or reads its v2 binary tensor) and calls ``session.run``
on it alone. Both servers run at once; wrk (Debian's ``wrk``, 64 connections, 30 s,
single-image requests, the POST bodies set by a few lines of Lua) loads them in turn, for
both models, in multipart PNG and in v2 binary. Recorded per run: requests/s, p99, failed
requests (non-2xx and socket errors), the server's RSS at the 10th and the 30th second,
and for fashion-serve the mean engine batch size from its /metrics.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, WORK

CONNECTIONS = 64
DURATION_S = 30
MODELS = ("mlp", "cnn")
ENCODINGS = ("multipart", "binary")
BOUNDARY = "benchboundary42"

# -- the baseline server -----------------------------------------------------------------


def baseline_app() -> Any:
    """The server a user writes: Starlette, one ``session.run`` per request."""
    import onnxruntime as ort
    from PIL import Image
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from fashion_onnx.infer.contract import default_model_path

    sessions = {m: ort.InferenceSession(str(default_model_path(m))) for m in MODELS}

    async def classify(request: Request) -> JSONResponse:
        form = await request.form()
        upload = form["file"]
        data = await upload.read()  # type: ignore[union-attr]
        image = Image.open(io.BytesIO(data)).convert("L")
        x = (np.asarray(image, np.float32) / 255).reshape(1, 1, 28, 28)
        (probs,) = sessions[request.path_params["model"]].run(["probabilities"], {"input": x})
        return JSONResponse({"label": int(probs[0].argmax()), "confidence": float(probs[0].max())})

    async def infer(request: Request) -> Response:
        body = await request.body()
        size = int(request.headers["inference-header-content-length"])
        header = json.loads(body[:size])
        x = np.frombuffer(body[size:], np.float32).reshape(header["inputs"][0]["shape"])
        (probs,) = sessions[request.path_params["model"]].run(["probabilities"], {"input": x})
        blob = probs.tobytes()
        answer = json.dumps(
            {
                "outputs": [
                    {
                        "name": "probabilities",
                        "datatype": "FP32",
                        "shape": list(probs.shape),
                        "parameters": {"binary_data_size": len(blob)},
                    }
                ]
            }
        ).encode()
        return Response(
            answer + blob,
            media_type="application/octet-stream",
            headers={"inference-header-content-length": str(len(answer))},
        )

    return Starlette(
        routes=[
            Route("/v1/models/{model}/classify", classify, methods=["POST"]),
            Route("/v2/models/{model}/infer", infer, methods=["POST"]),
        ]
    )


# -- load generation ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server for the bench exited ({process.args})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"a server for the bench did not start ({process.args})")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _bodies(image: np.ndarray) -> dict[str, tuple[bytes, dict[str, str]]]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="PNG")
    png = buffer.getvalue()
    multipart = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + png
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    x = (image.astype(np.float32) / np.float32(255)).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": [1, 1, 28, 28],
                    "parameters": {"binary_data_size": len(x)},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    ).encode()
    return {
        "multipart": (multipart, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}),
        "binary": (
            header + x,
            {
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(header)),
            },
        ),
    }


def _lua(body_file: Path, headers: dict[str, str]) -> Path:
    lines = [
        f'local f = assert(io.open("{body_file}", "rb"))',
        'wrk.body = f:read("*a")',
        "f:close()",
        'wrk.method = "POST"',
        *(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()),
    ]
    script = body_file.with_suffix(".lua")
    script.write_text("\n".join(lines) + "\n")
    return script


def case(
    work: Path, bodies: dict[str, tuple[bytes, dict[str, str]]], model: str, encoding: str
) -> tuple[Path, str]:
    """(wrk's Lua script, the URL path) for one model and encoding of ``_bodies``."""
    body, headers = bodies[encoding]
    body_file = work / f"{encoding}.body"
    body_file.write_bytes(body)
    path = f"/v1/models/{model}/classify"
    if encoding != "multipart":
        path = f"/v2/models/{model}/infer"
    return _lua(body_file, headers), path


def _wrk(url: str, script: Path, seconds: int, pid: int) -> dict[str, float]:
    """One wrk run; the server's RSS sampled at 1/3 and at the end of it."""
    rss: dict[str, float] = {}
    timer = threading.Timer(seconds / 3, lambda: rss.__setitem__("at_10s", _rss_mb(pid)))
    timer.start()
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rss["at_30s"] = _rss_mb(pid)
    timer.join()
    requests = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    failed = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        failed += sum(int(g) for g in socket_errors.groups())
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "requests": requests,
        "requests_per_s": rate,
        "failed": failed,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "rss_at_10s_mb": rss.get("at_10s", float("nan")),
        "rss_at_30s_mb": rss["at_30s"],
        "rss_growth_mb": rss["at_30s"] - rss.get("at_10s", float("nan")),
    }


def _batches(port: int, model: str) -> tuple[float, float]:
    """(sum, count) of fashion-serve's batch-size histogram for ``model``."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    found = {"sum": 0.0, "count": 0.0}
    for kind in found:
        match = re.search(rf'fashion_serve_batch_size_{kind}{{model="{model}"}} ([\d.]+)', text)
        if match:
            found[kind] = float(match.group(1))
    return found["sum"], found["count"]


def run(image: np.ndarray, seconds: int = DURATION_S) -> dict[str, Any]:
    """Both servers, every model and encoding; fashion-serve's figures beside the
    baseline's, alternating (baseline, then ours) for each pair."""
    if shutil.which("wrk") is None:
        raise SystemExit("the serving bench needs wrk: apt-get install wrk (make bench does)")
    work = WORK / "serving"
    work.mkdir(parents=True, exist_ok=True)
    ports = {"fashion_serve": _free_port(), "baseline": _free_port()}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    servers = {
        "fashion_serve": subprocess.Popen(
            [sys.executable, "-m", "fashion_onnx.serve", "--port", str(ports["fashion_serve"])],
            env=env,
            **quiet,  # type: ignore[arg-type]
        ),
        "baseline": subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "bench.serve:baseline_app",
                "--port",
                str(ports["baseline"]),
                "--log-level",
                "warning",
                "--no-access-log",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
            ],
            env=env,
            cwd=ROOT,
            **quiet,  # type: ignore[arg-type]
        ),
    }
    results: dict[str, Any] = {"connections": CONNECTIONS, "seconds": seconds, "runs": {}}
    try:
        for name, process in servers.items():
            _wait_ready(ports[name], "/", process)
        bodies = _bodies(image)
        for model in MODELS:
            for encoding in ENCODINGS:
                script, path = case(work, bodies, model, encoding)
                row: dict[str, Any] = {}
                for name in ("baseline", "fashion_serve"):
                    url = f"http://127.0.0.1:{ports[name]}{path}"
                    before = _batches(ports[name], model) if name == "fashion_serve" else None
                    print(f"  serving: {name}, {model}, {encoding} ...", flush=True)
                    row[name] = _wrk(url, script, seconds, servers[name].pid)
                    if before is not None:
                        total, count = _batches(ports[name], model)
                        row[name]["mean_batch"] = (total - before[0]) / max(1.0, count - before[1])
                row["vs_baseline"] = (
                    row["fashion_serve"]["requests_per_s"] / row["baseline"]["requests_per_s"]
                )
                results["runs"][f"{model}/{encoding}"] = row
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(20)
    return results
