"""Python, Node and the browser prepare a photo into the same 28x28 input (issue #18).

``web/prepare.js`` ports ``fashion_onnx.infer.prepare`` (Pillow's resampling included), so
on the same grayscale pixels it gives the same bytes. From a file, PNGs decode to the same
pixels everywhere, so their inputs are identical too. JPEGs do not: Python decodes with
libjpeg-turbo in Pillow's grayscale draft mode, Node with jpeg-js, Chromium with its own
libjpeg-turbo build, and the decoders' pixels differ by a grey level here and there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_onnx.infer.images import load_image
from fashion_onnx.infer.prepare import Preparation, prepare
from tests.test_embedding import (
    CHROMIUM,
    NODE_EXAMPLE,
    ROOT,
    WEB,
    need,
    python_probabilities,
    web_server,  # noqa: F401  (the fixture that serves the page)
)

PREPARE_JS = ROOT / "web" / "prepare.js"

# JPEG bounds, measured on this file's 15 JPEG photos. Against Pillow's draft-mode decode:
# - Chromium decodes with libjpeg-turbo too: identical at full size; 1 level at most where
#   Python decodes at 1/2 or 1/4 (the page averages blocks, as libjpeg's scaled IDCT
#   nearly does): max 1, mean 0.02.
# - Node's jpeg-js has its own IDCT: max 2 (a 24x18 photo), 14 of 15 photos within 1,
#   mean 0.06.
# Other photos can differ more: when a pixel at the garment's edge sits at the trim
# threshold, a decoder's one level keeps a row or column that the other trims, the garment
# is fitted at a slightly different scale and its edges move by tens of levels (13 to 26
# levels on 3 of 60 other photos with margins, jpeg-js against Pillow). Top-1 held on all.
JPEG_MOST_WITHIN_1 = 0.9  # the share of JPEG photos whose inputs differ by 1 level at most
JPEG_MEAN_DIFF = 0.1  # grey levels, over every pixel of every JPEG photo's input
JPEG_MAX_DIFF = 2  # grey levels, any one pixel


# -- the pure function: the same gray pixels in, the same 28x28 out ---------------------

NODE_PREPARE = """
import { readFileSync, writeFileSync } from "node:fs";
import { prepare } from "%s";
const [specFile, rawFile, outFile] = process.argv.slice(1);
const specs = JSON.parse(readFileSync(specFile, "utf8"));
const raw = new Uint8Array(readFileSync(rawFile));
const out = new Uint8Array(specs.length * 784);
let offset = 0;
specs.forEach((s, i) => {
  const gray = raw.subarray(offset, offset + s.width * s.height);
  out.set(prepare(gray, s.width, s.height, { invert: s.invert, fit: s.fit }).pixels, i * 784);
  offset += s.width * s.height;
});
writeFileSync(outFile, out);
"""


def prepare_in_node(pictures: list[np.ndarray], preparations: list[Preparation], tmp_path: Path):
    """Each (h, w) uint8 picture through web/prepare.js's ``prepare`` -> (n, 28, 28)."""
    specs = [
        {"width": p.shape[1], "height": p.shape[0], "invert": how.invert, "fit": how.fit}
        for p, how in zip(pictures, preparations, strict=True)
    ]
    (tmp_path / "specs.json").write_text(json.dumps(specs))
    (tmp_path / "pictures.u8").write_bytes(b"".join(p.tobytes() for p in pictures))
    subprocess.run(
        [
            "node",
            "--input-type=module",
            "-e",
            NODE_PREPARE % PREPARE_JS.as_uri(),
            str(tmp_path / "specs.json"),
            str(tmp_path / "pictures.u8"),
            str(tmp_path / "out.u8"),
        ],
        check=True,
    )
    return np.frombuffer((tmp_path / "out.u8").read_bytes(), np.uint8).reshape(-1, 28, 28)


def random_pictures(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Noise, and photo-like pictures (a textured garment on a noisy light or dark
    background), of random shapes from 1 to 700 pixels a side."""
    pictures = []
    for i in range(count):
        high = 700 if i % 4 == 0 else 120  # a few large ones; most small (node is quick)
        h, w = (int(v) for v in rng.integers(1, high + 1, 2))
        if i % 3 == 0:
            pictures.append(rng.integers(0, 256, (h, w), dtype=np.uint8))
            continue
        background = 255 - int(rng.integers(0, 30)) if i % 3 == 1 else int(rng.integers(0, 30))
        picture = np.full((h, w), background, dtype=np.int16)
        top, left = int(rng.integers(0, h)), int(rng.integers(0, w))
        bottom, right = int(rng.integers(top, h + 1)), int(rng.integers(left, w + 1))
        picture[top:bottom, left:right] = rng.integers(0, 256, (bottom - top, right - left))
        picture += rng.integers(-12, 13, (h, w))  # JPEG-like noise around the threshold
        pictures.append(np.clip(picture, 0, 255).astype(np.uint8))
    return pictures


def two_tone_border() -> np.ndarray:
    """A border half 10, half 56: its median is their mean, 33, which neither differs from
    by more than the threshold; so the garment box is the bright block alone."""
    picture = np.full((40, 60), 33, np.uint8)
    picture[0, :], picture[1:-1, 0] = 10, 10
    picture[-1, :], picture[1:-1, -1] = 56, 56
    picture[15:25, 20:45] = 200
    return picture


def test_prepare_js_gives_pythons_bytes_on_the_same_gray_pixels(tmp_path: Path, test_set) -> None:
    """Random shapes (under 28, 28x28, up to 700), noise and photo-like pictures, light and
    dark backgrounds, all-black and all-white, every invert and fit: byte-identical."""
    need(shutil.which("node") is not None, "node is not installed")
    rng = np.random.default_rng(18)
    pictures = random_pictures(rng, 150)
    garment = np.asarray(
        Image.fromarray(test_set[0][0]).resize((90, 90), Image.Resampling.BICUBIC)
    )
    dark_photo = np.zeros((120, 200), np.uint8)  # light garment on black: no inversion
    dark_photo[10:100, 70:160] = garment
    pictures += [
        np.zeros((40, 60), np.uint8),  # all black: nothing to trim to
        np.full((33, 90), 255, np.uint8),  # all white
        np.full((3, 3), 255, np.uint8),
        np.zeros((1, 1), np.uint8),
        dark_photo,
        255 - dark_photo,  # the same garment as a product photo
        test_set[0][1],  # 28x28: only the inversion check
        255 - test_set[0][2],
        rng.integers(0, 256, (5, 56), dtype=np.uint8),  # 28 * 5 / 56 = 2.5: rounds to even
        rng.integers(0, 256, (56, 5), dtype=np.uint8),
        two_tone_border(),
    ]
    invert_modes = ("auto", "always", "never")
    preparations = [
        Preparation(invert=invert_modes[i % 3], fit="full" if i % 5 == 0 else "trim")
        for i in range(len(pictures))
    ]
    preparations[-11:] = [Preparation()] * 11
    node = prepare_in_node(pictures, preparations, tmp_path)
    python = np.stack([prepare(p, how) for p, how in zip(pictures, preparations, strict=True)])
    differ = [
        (p.shape, how) for p, how, a, b in zip(pictures, preparations, node, python, strict=True)
        if not np.array_equal(a, b)
    ]
    assert not differ, f"{len(differ)} of {len(pictures)} differ, e.g. {differ[:5]}"
    assert node[-7].max() > 0 and node[-8].max() == 0  # the garment was found, black kept


NODE_GRAY = """
import { readFileSync, writeFileSync } from "node:fs";
import { rgbaToGray } from "%s";
const rgba = new Uint8Array(readFileSync(process.argv[1]));
writeFileSync(process.argv[2], rgbaToGray(rgba, rgba.length / 4, 1));
"""


def test_rgba_to_gray_is_pillows_alpha_on_white_then_luma(tmp_path: Path) -> None:
    """Every colour and alpha: rgbaToGray gives what images.py's decoding gives (Pillow's
    alpha_composite onto white, then convert("L"))."""
    need(shutil.which("node") is not None, "node is not installed")
    from fashion_onnx.infer.images import _to_gray_array

    rng = np.random.default_rng(18)
    rgba = rng.integers(0, 256, (1, 100_000, 4), dtype=np.uint8)
    rgba[0, :20_000, 3] = 255  # opaque, as most photos
    rgba[0, 20_000:25_000, 3] = 0
    (tmp_path / "rgba.u8").write_bytes(rgba.tobytes())
    subprocess.run(
        ["node", "--input-type=module", "-e", NODE_GRAY % PREPARE_JS.as_uri()]
        + [str(tmp_path / "rgba.u8"), str(tmp_path / "gray.u8")],
        check=True,
    )
    node = np.frombuffer((tmp_path / "gray.u8").read_bytes(), np.uint8)
    python = _to_gray_array(Image.fromarray(rgba, mode="RGBA"))[0]
    np.testing.assert_array_equal(node, python)
    opaque = _to_gray_array(Image.fromarray(rgba[:, :20_000, :3], mode="RGB"))[0]
    np.testing.assert_array_equal(node[:20_000], opaque)


# -- from files: photos with margins, built from real test images -----------------------


@dataclass(frozen=True)
class PhotoFile:
    path: Path
    kind: str  # how it was made (see KINDS)
    index: int  # the test image it shows

    @property
    def is_jpeg(self) -> bool:
        return self.path.suffix == ".jpg"


# How each photo is saved: product photos (a dark garment on white) as RGB and grayscale
# PNG and JPEG; a cut-out PNG (black ink whose alpha is the garment's darkness, on a
# transparent background); and a light garment on black (nothing to invert).
KINDS = ("png-rgb", "jpeg-rgb", "png-gray", "jpeg-gray", "png-cutout", "png-dark", "jpeg-dark")
# Canvas sizes (width, height): portrait, landscape, large (JPEGs decoded at 1/2 and 1/4
# in Python's draft mode) and smaller than the model's 28x28.
CANVASES = ((300, 400), (400, 300), (640, 480), (1000, 1000), (24, 18))


def photo_files(images: np.ndarray, directory: Path, count: int = 35) -> list[PhotoFile]:
    """``count`` test images as photos with margins: each garment enlarged (bicubic) to
    35-90% of its canvas's longer side, placed off-centre; every kind meets every size."""
    rng = np.random.default_rng(18)
    chosen = rng.choice(len(images), size=count, replace=False)
    photos = []
    for n, index in enumerate(chosen):
        kind, (width, height) = KINDS[n % len(KINDS)], CANVASES[n % len(CANVASES)]
        side = min(int(max(width, height) * rng.uniform(0.35, 0.9)), width, height)
        at = (int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1)))
        light = Image.fromarray(images[index]).resize((side, side), Image.Resampling.BICUBIC)
        if kind.endswith("dark"):
            picture = Image.new("L", (width, height), 0)
            picture.paste(light, at)
        elif kind == "png-cutout":
            picture = Image.new("RGBA", (width, height), (0, 0, 0, 0))
            ink = Image.new("RGBA", (side, side), (0, 0, 0, 255))
            ink.putalpha(light)  # the garment's brightness becomes the ink's opacity
            picture.paste(ink, at)
        else:
            picture = Image.new("L", (width, height), 255)
            picture.paste(Image.fromarray(255 - np.asarray(light)), at)
        if kind.endswith("rgb"):
            picture = picture.convert("RGB")
        suffix = ".jpg" if kind.startswith("jpeg") else ".png"
        path = directory / f"photo-{n:02d}-{kind}-{width}x{height}{suffix}"
        picture.save(path, **({"quality": 90} if suffix == ".jpg" else {}))
        photos.append(PhotoFile(path, kind, int(index)))
    return photos


@pytest.fixture(scope="module")
def photos(tmp_path_factory, test_set) -> list[PhotoFile]:
    return photo_files(test_set[0], tmp_path_factory.mktemp("photos"))


def node_inputs(paths: list[Path], *options: str) -> tuple[np.ndarray, list[int]]:
    """classify.mjs --show-input on the files -> their inputs (n, 28, 28) and top-1 labels."""
    out = subprocess.run(
        ["node", str(NODE_EXAMPLE / "classify.mjs"), "mlp", "--show-input", *options]
        + [str(p) for p in paths],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(out.stdout)
    assert [row["input"] for row in rows] == [str(p) for p in paths]
    pixels = np.array([row["pixels"] for row in rows], dtype=np.uint8).reshape(-1, 28, 28)
    return pixels, [row["label"] for row in rows]


def compare(photos: list[PhotoFile], got: np.ndarray, python: np.ndarray, where: str) -> dict:
    """Check PNGs are identical and JPEGs within the measured bounds; return the figures."""
    diff = np.abs(got.astype(np.int16) - python).reshape(len(photos), -1).max(axis=1)
    png = [i for i, photo in enumerate(photos) if not photo.is_jpeg]
    jpeg = [i for i, photo in enumerate(photos) if photo.is_jpeg]
    bad_png = {photos[i].path.name: int(diff[i]) for i in png if diff[i]}
    assert not bad_png, f"{where}: PNG inputs differ from Python's: {bad_png}"
    jpeg_diff = np.abs(got[jpeg].astype(np.int16) - python[jpeg])
    figures = {
        "png_max": int(diff[png].max()),
        "jpeg_max": int(jpeg_diff.max()),
        "jpeg_mean": float(jpeg_diff.mean()),
        "jpeg_within_1": float((diff[jpeg] <= 1).mean()),
        "jpeg_per_photo": {photos[i].path.name: int(diff[i]) for i in jpeg},
    }
    print(where, figures)
    assert figures["jpeg_within_1"] >= JPEG_MOST_WITHIN_1, figures
    assert figures["jpeg_mean"] <= JPEG_MEAN_DIFF, figures
    assert figures["jpeg_max"] <= JPEG_MAX_DIFF, figures
    return figures


def test_node_prepares_photos_as_python_does(photos: list[PhotoFile]) -> None:
    """classify.mjs on PNG and JPEG photos with margins (several sizes, offsets, a cut-out,
    a dark background, ones under 28 px): PNG inputs identical to fashion-infer's, JPEG
    inputs within the bounds above, and top-1 identical to Python's on its own inputs.
    Measured: PNG max |diff| 0; JPEG (jpeg-js against Pillow's draft mode) see the printout."""
    need(shutil.which("node") is not None, "node is not installed")
    need((NODE_EXAMPLE / "node_modules" / "jpeg-js").is_dir(), "run npm ci in examples/node")
    python = np.stack([load_image(photo.path) for photo in photos])
    node, labels = node_inputs([photo.path for photo in photos])
    compare(photos, node, python, "node")
    assert labels == python_probabilities(python).argmax(1).tolist()


def test_node_fit_full_is_pythons_fit_full(photos: list[PhotoFile]) -> None:
    """--fit full: the whole frame padded and resized, as fashion-infer --fit full."""
    need(shutil.which("node") is not None, "node is not installed")
    need((NODE_EXAMPLE / "node_modules" / "jpeg-js").is_dir(), "run npm ci in examples/node")
    pngs = [photo for photo in photos if not photo.is_jpeg]
    python = np.stack([load_image(p.path, Preparation(fit="full")) for p in pngs])
    node, _ = node_inputs([p.path for p in pngs], "--fit", "full")
    np.testing.assert_array_equal(node, python)
    trimmed, _ = node_inputs([p.path for p in pngs])
    assert not np.array_equal(node, trimmed)  # the option changes what the model sees


def test_node_names_the_formats_it_reads(tmp_path: Path) -> None:
    need(shutil.which("node") is not None, "node is not installed")
    need((NODE_EXAMPLE / "node_modules" / "jpeg-js").is_dir(), "run npm ci in examples/node")
    webp = tmp_path / "garment.webp"
    Image.new("RGB", (40, 40), "white").save(webp)
    failed = subprocess.run(
        ["node", str(NODE_EXAMPLE / "classify.mjs"), "mlp", str(webp)],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [
        f"error: {webp}: a WebP file; this example reads PNG and JPEG (fashion-infer reads more)"
    ]
    bad_fit = subprocess.run(
        ["node", str(NODE_EXAMPLE / "classify.mjs"), "mlp", "--fit", "crop", str(webp)],
        capture_output=True,
        text=True,
    )
    assert bad_fit.returncode == 2
    assert "error: --fit must be one of trim, full" in bad_fit.stderr


@pytest.mark.slow
def test_the_page_prepares_photos_as_python_does(
    photos: list[PhotoFile],
    web_server,  # noqa: F811
) -> None:
    """The page's upload path on the same photos: its "what the model sees" preview holds
    Python's input for every PNG, and JPEG inputs within the bounds above (Chromium's
    decoder against Pillow's draft mode); top-1 identical to Python's."""
    need(CHROMIUM.exists(), "Debian's chromium is not installed")
    need((WEB / "node_modules" / "onnxruntime-web").is_dir(), "run npm ci in web/")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    python = np.stack([load_image(photo.path) for photo in photos])
    shown, top1 = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{web_server}/web/")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('ready')")
        for photo in photos:
            page.set_input_files("#file", str(photo.path))
            page.wait_for_function(
                "name => document.getElementById('status').textContent"
                ".startsWith('classified ' + name)",
                arg=photo.path.name,
            )
            rgba = page.evaluate(
                "() => Array.from(document.getElementById('preview').getContext('2d')"
                ".getImageData(0, 0, 28, 28).data)"
            )
            shown.append(np.array(rgba, dtype=np.uint8).reshape(28, 28, 4)[..., 0])
            top1.append(int(page.get_attribute("#top3 li:first-child", "data-label")))
        note = page.text_content("#preview-note")
        browser.close()
    assert not errors, errors
    assert "trimmed to the garment" in note
    compare(photos, np.stack(shown), python, "chromium")
    assert top1 == python_probabilities(python).argmax(1).tolist()
