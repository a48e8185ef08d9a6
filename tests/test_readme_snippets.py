"""Every code block of the README that is not a shell command runs here, as written:
Python with this package, with onnxruntime alone, on the photo model and against the
server; JavaScript in Node and against the server; the page's lines are the page's (the
browser tests run it). Only what a reader supplies is supplied: files named in the
snippet, the arrays it assumes, and the server's address where it runs on a free port.
The Ray block runs against a local S3 in tests/test_ray.py."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.readme_snippets import block_with, blocks

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
ASSETS = ROOT / "src" / "fashion_onnx" / "assets"
NODE_EXAMPLE = ROOT / "examples" / "node"


def test_every_code_block_is_run_somewhere() -> None:
    """A new block needs a test: the count of each kind is pinned here."""
    assert len(blocks("python")) == 5  # 4 here, the Ray one in test_ray.py
    assert len(blocks("js")) == 3


@pytest.fixture
def reader_files(tmp_path: Path) -> Path:
    """What the snippets name: shoe.png, shirt.jpg, photos/, shots/*.jpg, model.onnx and
    the photo model, in the folder a reader runs them from."""
    Image.open(SAMPLES / "18_ankle-boot.gif").save(tmp_path / "shoe.png")
    Image.open(SAMPLES / "13_shirt.PNG").convert("RGB").save(tmp_path / "shirt.jpg")
    (tmp_path / "photos").mkdir()
    (tmp_path / "shots").mkdir()
    for name in sorted(os.listdir(SAMPLES))[:6]:
        if name != "labels.csv":
            shutil.copy(SAMPLES / name, tmp_path / "photos" / name)
    Image.open(SAMPLES / "02_trouser.bmp").convert("RGB").save(tmp_path / "shots" / "a.jpg")
    (tmp_path / "shots" / "broken.jpg").write_bytes(b"not a jpeg")
    shutil.copy(ASSETS / "fashion_mlp.onnx", tmp_path / "model.onnx")
    shutil.copy(ASSETS / "fashion_mlp_photo.onnx", tmp_path / "fashion_mlp_photo.onnx")
    return tmp_path


def run_python(code: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_classifier_block(reader_files: Path) -> None:
    out = run_python(block_with("python", "clf.classify_files("), reader_files)
    lines = out.splitlines()
    assert lines[0].startswith("['Ankle boot', 'Shirt'] ") and "CPUExecutionProvider" in out
    assert any(line.endswith(" Trouser") and "shots/a.jpg" in line for line in lines)
    assert any(line.startswith("skipped shots/broken.jpg") for line in lines)
    assert sum(line.startswith("photos/") for line in lines) == 6


def test_the_onnxruntime_alone_block(reader_files: Path, test_set) -> None:
    images, labels = test_set[0][:50], test_set[1][:50]
    np.save(reader_files / "images.npy", images)
    prelude = "import numpy as np\nimages_uint8 = np.load('images.npy')\n"
    out = run_python(prelude + block_with("python", '{"input": x}'), reader_files)
    names = eval(out)  # the printed list of class names
    from fashion_onnx.constants import CLASS_NAMES

    assert sum(n == CLASS_NAMES[i] for n, i in zip(names, labels, strict=True)) >= 40


def test_the_photo_model_block(reader_files: Path) -> None:
    out = run_python(block_with("python", "fashion_mlp_photo.onnx"), reader_files)
    assert out == "Shirt (28, 28)\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(request):
    """fashion-serve on a free port; with a token where the test is parametrized so (the
    README's fetch sends one, its Triton client none)."""
    pytest.importorskip("uvicorn", reason="the [serve] extra is not installed")
    port = free_port()
    token = ["--token", request.param] if getattr(request, "param", None) else []
    process = subprocess.Popen(
        [sys.executable, "-m", "fashion_onnx.serve", "--port", str(port), *token],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)


def test_the_triton_client_block(reader_files: Path, server: str) -> None:
    pytest.importorskip("tritonclient.http", reason="tritonclient is not installed")
    code = block_with("python", "tritonclient").replace("127.0.0.1:8000", server)
    out = run_python(code + "\nprint(probs.shape, probs.argmax())\n", reader_files)
    from fashion_onnx.infer import Classifier

    shirt = Classifier("cnn").predict([str(reader_files / "shirt.jpg")]).labels[0]
    assert shirt == 6 and out.strip() == f"(1, 10) {shirt}"  # the CNN's answer on the shirt


def node(script: str, cwd: Path) -> str:
    if shutil.which("node") is None or not (NODE_EXAMPLE / "node_modules").is_dir():
        pytest.skip("node, or examples/node's packages (npm ci), missing")
    path = cwd / "snippet.mjs"
    path.write_text(script)
    env = {**os.environ, "NODE_PATH": str(NODE_EXAMPLE / "node_modules")}
    done = subprocess.run(
        ["node", str(path)], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_node_block(reader_files: Path) -> None:
    # the snippet imports onnxruntime-node by name: resolve it from the example's packages
    (reader_files / "node_modules").symlink_to(NODE_EXAMPLE / "node_modules")
    shirt = Image.open(reader_files / "shirt.jpg").convert("RGB")
    (reader_files / "shirt.rgb").write_bytes(np.asarray(shirt).tobytes())
    prelude = (
        'import { readFileSync } from "node:fs";\n'
        f"const width = {shirt.width}, height = {shirt.height};\n"
        'const rgb = new Uint8Array(readFileSync("shirt.rgb"));\n'
    )
    after = (
        "\nconst p = Array.from(calibrated_probabilities.data);\n"
        "console.log(p.indexOf(Math.max(...p)), prepared.dims.join('x'));\n"
    )
    out = node(prelude + block_with("js", "onnxruntime-node") + after, reader_files)
    assert out.split() == ["6", "28x28"]


@pytest.mark.parametrize("server", ["t0k"], indirect=True)
def test_the_fetch_block(reader_files: Path, server: str) -> None:
    code = block_with("js", "FormData").replace("127.0.0.1:8000", server)
    prelude = (
        'import { readFileSync } from "node:fs";\n'
        'const token = "t0k";\n'
        'const input = { files: [new File([readFileSync("shirt.jpg")], "shirt.jpg")] };\n'
    )
    out = node(prelude + code + "\nconsole.log(JSON.stringify(results));\n", reader_files)
    assert re.search(r'"file":"shirt.jpg","label":6,"class":"Shirt"', out), out


def test_the_page_block_is_the_pages_own_code() -> None:
    """The browser block is lines of web/app.js, which tests/test_embedding.py runs."""
    page = {line.strip() for line in (ROOT / "web" / "app.js").read_text().splitlines()}
    code = [line for line in block_with("js", "onnxruntime-web").splitlines()]
    lines = [line.strip() for line in code if line.strip() and not line.startswith("//")]
    assert lines and all(line in page for line in lines), [x for x in lines if x not in page]
