"""#33's agreement figures: the embedded photo models in every runtime against fashion-infer.

The same photo files (as taken, seed 30; with margins, seed 18, WebP re-encoded as PNG for
the Node example, which reads PNG and JPEG; as taken stored turned with an EXIF
orientation, seed 32) go through fashion-infer's own decoding and preparation and the
plain model, and through each photo model: onnxruntime in Python (files decoded by
Pillow, upright, ``images.load_rgb``), Node (examples/node/classify.mjs: pngjs, and
libjpeg-turbo through sharp),
the page in Chromium (its upload path, driven by Playwright) and ``onnx.reference`` (a
sample: it is slow). Per runtime and model: top-1 agreement with fashion-infer, accuracy,
and how close ``prepared`` came to fashion-infer's picture (PNG and JPEG apart).
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import ROOT, WORK
from bench.photos import taken_set
from fashion_onnx.photosets import ORIENTATIONS, Photo, with_margins

ASSETS = ROOT / "src" / "fashion_onnx" / "assets"
NODE = ROOT / "examples" / "node" / "classify.mjs"
CHROMIUM = Path("/usr/bin/chromium")
MODELS = ("mlp", "cnn")


def photo_files(images: np.ndarray, count: int, name: str) -> list[Path]:
    """``count`` as taken, ``count`` with margins, ``count // 2`` stored turned, as files."""
    folder = WORK / name
    if folder.exists():
        for old in folder.iterdir():
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    photos: list[tuple[str, Photo]] = []
    _, shots = taken_set(images, count, 30)
    photos += [("taken", s.save()) for s in shots]
    rng = np.random.default_rng(18)
    for i in np.sort(rng.choice(len(images), count, replace=False)):
        photo = with_margins(images[i], rng)
        if photo.suffix == ".webp":  # the Node example reads PNG and JPEG
            buffer = io.BytesIO()
            Image.open(io.BytesIO(photo.data)).save(buffer, format="PNG")
            photo = Photo(buffer.getvalue(), ".png")
        photos.append(("margins", photo))
    _, turned = taken_set(images, count // 2, 32)
    photos += [
        ("turned", s.save(ORIENTATIONS[n % len(ORIENTATIONS)])) for n, s in enumerate(turned)
    ]
    paths = []
    for n, (kind, photo) in enumerate(photos):
        path = folder / f"{n:05d}-{kind}{photo.suffix}"
        path.write_bytes(photo.data)
        paths.append(path)
    return paths


def _figures(
    prepared: np.ndarray,
    top1: np.ndarray,
    reference: np.ndarray,
    labels: np.ndarray,
    jpeg: np.ndarray,
    truth: np.ndarray,
) -> dict:
    pixels = np.abs(prepared.astype(int) - reference.astype(int)).reshape(len(top1), -1)
    worst = pixels.max(axis=1)
    return {
        "photos": len(top1),
        "top1_agreement": float((top1 == labels).mean()),
        "accuracy": float((top1 == truth).mean()) if truth is not None else None,
        # fashion-infer's on the same photos (the sample, for onnx.reference)
        "fashion_infer_accuracy": float((labels == truth).mean()),
        "png_prepared_within_1": float((worst[~jpeg] <= 1).mean()),
        "jpeg_prepared_within_1": float((worst[jpeg] <= 1).mean()),
        "jpeg_prepared_mean_diff": float(pixels[jpeg].mean()),
    }


def _serve() -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(ROOT))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/web/"


def chromium(model: str, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The page's upload path: (prepared previews, top-1 labels)."""
    from playwright.sync_api import sync_playwright

    server, url = _serve()
    shown, top1 = [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM),
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-sync",
                    "--disable-background-networking",
                    "--disable-component-update",
                ],
            )
            page = browser.new_page()
            page.goto(url)
            ready = "document.getElementById('status').textContent.startsWith('ready')"
            page.wait_for_function(ready)
            page.select_option("#model", model)
            page.wait_for_function(ready)
            for path in paths:
                page.set_input_files("#file", str(path))
                page.wait_for_function(
                    "name => document.getElementById('status').textContent"
                    ".startsWith('classified ' + name)",
                    arg=path.name,
                )
                rgba = page.evaluate(
                    "() => Array.from(document.getElementById('preview').getContext('2d')"
                    ".getImageData(0, 0, 28, 28).data)"
                )
                shown.append(np.array(rgba, np.uint8).reshape(28, 28, 4)[..., 0])
                top1.append(int(page.get_attribute("#top3 li:first-child", "data-label")))
            browser.close()
    finally:
        server.shutdown()
    return np.stack(shown), np.array(top1)


def run(images: np.ndarray, labels: np.ndarray, quick: bool) -> dict:
    import onnx
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    from fashion_onnx.infer import Classifier
    from fashion_onnx.infer.decode import decode_chunk
    from fashion_onnx.infer.images import load_rgb
    from fashion_onnx.infer.prepare import Preparation

    count = 10 if quick else 600
    paths = photo_files(images, count, f"{'quick-' if quick else ''}photos-parity")
    truth_idx = list(taken_set(images, count, 30)[0])
    rng = np.random.default_rng(18)
    truth_idx += list(np.sort(rng.choice(len(images), count, replace=False)))
    truth_idx += list(taken_set(images, count // 2, 32)[0])
    truth = labels[np.array(truth_idx)]
    jpeg = np.array([p.suffix == ".jpg" for p in paths])
    ours = decode_chunk([str(p) for p in paths], Preparation()).images
    rgb = [load_rgb(p) for p in paths]
    results: dict = {"photos": len(paths), "jpeg": int(jpeg.sum()), "runtimes": {}}
    for model in MODELS:
        fashion_infer = Classifier(model, device="cpu").predict(ours).labels
        path = ASSETS / f"fashion_{model}_photo.onnx"
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        started = time.perf_counter()
        ran = [session.run(["calibrated_probabilities", "prepared"], {"image": x}) for x in rgb]
        seconds = time.perf_counter() - started
        rows = {
            "onnxruntime (Python)": (
                np.stack([r[1] for r in ran]),
                np.array([r[0].argmax() for r in ran]),
            )
        }
        node = json.loads(
            subprocess.run(
                ["node", str(NODE), model, "--show-input", *map(str, paths)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        rows["onnxruntime-node"] = (
            np.array([r["pixels"] for r in node], np.uint8).reshape(-1, 28, 28),
            np.array([r["label"] for r in node]),
        )
        rows["onnxruntime-web (Chromium)"] = chromium(model, paths)
        entry = {
            "fashion_infer_accuracy": float((fashion_infer == truth).mean()),
            "onnxruntime_seconds_per_photo": seconds / len(paths),
        }
        for runtime, (prepared, top1) in rows.items():
            entry[runtime] = _figures(prepared, top1, ours, fashion_infer, jpeg, truth)
        sample = list(range(0, len(paths), max(1, len(paths) // (3 if quick else 12))))
        reference = ReferenceEvaluator(onnx.load(str(path)))
        ref = [
            reference.run(["calibrated_probabilities", "prepared"], {"image": rgb[i]})
            for i in sample
        ]
        entry["onnx.reference"] = _figures(
            np.stack([r[1] for r in ref]),
            np.array([r[0].argmax() for r in ref]),
            ours[sample],
            fashion_infer[sample],
            jpeg[sample],
            truth[sample],
        )
        results["runtimes"][model] = entry
    return results
