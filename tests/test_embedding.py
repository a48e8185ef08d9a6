"""The same ONNX files give the same answers in Node (onnxruntime-node) and in the browser
(onnxruntime-web, wasm, driven like a person with Playwright) as in Python: the plain
model on prepared pixels (Node --raw), and the photo model on the real test images as
28x28 files (Node and the page), which it takes as the dataset's own."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from fashion_onnx.infer.contract import default_model_path

ROOT = Path(__file__).resolve().parent.parent
NODE_EXAMPLE = ROOT / "examples" / "node"
WEB = ROOT / "web"
CHROMIUM = Path("/usr/bin/chromium")


def need(condition: bool, reason: str) -> None:
    """Skip locally when a tool is missing; in CI (CI=true) a missing tool is a failure."""
    if not condition:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI must install it: make test does)")
        pytest.skip(reason)


MODELS = ["mlp", "cnn"]  # the embedded models; each must work in every runtime


def python_probabilities(images: np.ndarray, model: str = "mlp") -> np.ndarray:
    session = ort.InferenceSession(
        str(default_model_path(model)), providers=["CPUExecutionProvider"]
    )
    x = images.reshape(-1, 1, 28, 28).astype(np.float32) / 255
    return session.run(["calibrated_probabilities"], {"input": x})[0]  # what all report


@pytest.mark.parametrize("model", MODELS)
def test_node_matches_python_on_200_real_test_images(model, test_set, tmp_path: Path) -> None:
    need(shutil.which("node") is not None, "node is not installed")
    need(
        (NODE_EXAMPLE / "node_modules" / "onnxruntime-node").is_dir(), "run npm ci in examples/node"
    )
    images = test_set[0][:200]
    raw = tmp_path / "images.u8"
    raw.write_bytes(images.tobytes())
    out = subprocess.run(
        ["node", str(NODE_EXAMPLE / "classify.mjs"), model, "--raw", str(raw)],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(out.stdout)
    node = np.array([row["probabilities"] for row in rows], dtype=np.float32)
    python = python_probabilities(images, model)
    assert node.shape == (200, 10)
    assert np.abs(node - python).max() <= 1e-5, np.abs(node - python).max()
    print(f"node max |diff| {np.abs(node - python).max():.3g}")
    assert (node.argmax(1) == python.argmax(1)).all()
    names = json.loads(
        ort.InferenceSession(str(default_model_path(model)))
        .get_modelmeta()
        .custom_metadata_map["class_names"]
    )
    assert [row["class"] for row in rows] == [names[i] for i in python.argmax(1)]


def test_node_reads_png_files_and_names_a_bad_one(tmp_path: Path, test_set) -> None:
    need(shutil.which("node") is not None, "node is not installed")
    need((NODE_EXAMPLE / "node_modules" / "pngjs").is_dir(), "run npm ci in examples/node")
    good = tmp_path / "good.png"
    Image.fromarray(test_set[0][0], mode="L").save(good)
    out = subprocess.run(  # a 28x28 picture: the photo model takes it as the dataset's own
        ["node", str(NODE_EXAMPLE / "classify.mjs"), "mlp", str(good)],
        capture_output=True,
        text=True,
        check=True,
    )
    (row,) = json.loads(out.stdout)
    np.testing.assert_allclose(
        row["probabilities"],
        python_probabilities(test_set[0][:1])[0],
        atol=1e-5,
    )
    bad = tmp_path / "bad.png"
    bad.write_text("not a png")
    failed = subprocess.run(
        ["node", str(NODE_EXAMPLE / "classify.mjs"), "mlp", str(bad)],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert f"{bad}: not a readable PNG" in failed.stderr
    plain = subprocess.run(  # images need the photo model; a plain one is named as such
        ["node", str(NODE_EXAMPLE / "classify.mjs"), str(default_model_path()), str(good)],
        capture_output=True,
        text=True,
    )
    assert plain.returncode == 2 and "not a photo model" in plain.stderr


def test_node_takes_more_paths_than_onnxruntime_node_survives(tmp_path: Path, test_set) -> None:
    """onnxruntime-node 1.30 crashes (SIGSEGV) creating a session when the process's command
    line is over about 30 KB; classify.mjs hands long lists of paths to a copy of itself."""
    need(shutil.which("node") is not None, "node is not installed")
    need((NODE_EXAMPLE / "node_modules" / "pngjs").is_dir(), "run npm ci in examples/node")
    folder = tmp_path / "a-folder-with-a-rather-long-name-as-photo-folders-have"
    folder.mkdir()
    paths = []
    for i in range(700):
        paths.append(folder / f"photo-{i:04d}-of-the-garments.png")
        Image.fromarray(test_set[0][i % 20], mode="L").save(paths[-1])
    assert len(" ".join(map(str, paths))) > 60_000
    out = subprocess.run(
        ["node", str(NODE_EXAMPLE / "classify.mjs"), "mlp", *map(str, paths)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [row["input"] for row in rows] == [str(p) for p in paths]
    want = python_probabilities(test_set[0][:20]).argmax(1)
    assert [row["label"] for row in rows] == [int(want[i % 20]) for i in range(700)]


@pytest.fixture(scope="module")
def web_server():
    """Serve the repository root on localhost (the page loads the package's model)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(ROOT))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_the_browser_page_matches_python_through_its_upload_path(
    model, web_server, test_set, tmp_path
):
    need(CHROMIUM.exists(), "Debian's chromium is not installed")
    need((WEB / "node_modules" / "onnxruntime-web").is_dir(), "run npm ci in web/")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    images = test_set[0][:20]
    paths = []
    for i, pixels in enumerate(images):
        paths.append(tmp_path / f"test-{i:02d}.png")
        Image.fromarray(pixels, mode="L").save(paths[-1])
    python = python_probabilities(images, model)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{web_server}/web/")
        ready = "document.getElementById('status').textContent.startsWith('ready')"
        page.wait_for_function(ready)
        page.select_option("#model", model)  # the page's own model switch, as a person would
        page.wait_for_function(ready)
        browser_probs, top1 = [], []
        for path in paths:
            page.set_input_files("#file", str(path))  # the page's own upload path
            page.wait_for_function(
                "name => document.getElementById('status').textContent"
                ".startsWith('classified ' + name)",
                arg=path.name,
            )
            rows = page.query_selector_all("#probs tbody tr")
            browser_probs.append([float(r.get_attribute("data-prob")) for r in rows])
            top1.append(int(page.get_attribute("#top3 li:first-child", "data-label")))
            shown = page.text_content("#top3 li:first-child .name")
            assert shown == page.text_content(f"#probs tbody tr:nth-child({top1[-1] + 1}) td")
        page.click("summary")  # open "All classes" for the screenshot, as a person would
        page.screenshot(path=str(tmp_path / "web-page.png"), full_page=True)
        browser.close()

    got = np.array(browser_probs, dtype=np.float32)
    assert np.abs(got - python).max() <= 1e-4, np.abs(got - python).max()
    assert top1 == python.argmax(1).tolist()
    assert not errors, errors
    assert (tmp_path / "web-page.png").stat().st_size > 10_000
    print(f"browser max |diff| {np.abs(got - python).max():.3g}; screenshot in {tmp_path}")
