"""Product photos are prepared as FashionMNIST was made (trim, fit, centre), and 28x28
inputs are left as they are (issue #18)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_onnx.errors import InvalidArgumentError
from fashion_onnx.infer import Classifier
from fashion_onnx.infer.decode import decode_chunk
from fashion_onnx.infer.images import load_image
from fashion_onnx.infer.photo import WORK_SIDE, bounds, garment, working_copy
from fashion_onnx.infer.prepare import Preparation, prepare
from fashion_onnx.photosets import full_frame, with_margins

TRIM = Preparation(fit="trim")
FULL = Preparation(fit="full")
MODELS = ["mlp", "cnn"]


def todays_full_frame(gray: np.ndarray) -> np.ndarray:
    """The whole-frame preparation as it was before #18, written out independently: invert
    a light border, pad to a square with black, one Pillow resize to 28x28."""
    h, w = gray.shape
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    if border.astype(np.float64).sum() > border.size * 127.5:
        gray = 255 - gray
    if gray.shape == (28, 28):
        return gray
    side = max(h, w)
    square = np.zeros((side, side), np.uint8)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = gray
    filt = Image.Resampling.BOX if side > 28 else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(square).resize((28, 28), filt))


@pytest.fixture(scope="module")
def photos(test_set, tmp_path_factory) -> tuple[np.ndarray, list[Path], list[Path]]:
    """120 real test images as photo files: (their indices, full frame, with margins).
    Sizes, offsets and formats (JPEG, WebP, PNG) vary with a fixed seed."""
    rng = np.random.default_rng(7)
    chosen = rng.choice(len(test_set[0]), size=120, replace=False)
    folder = tmp_path_factory.mktemp("photos")
    full, margins = [], []
    for n, i in enumerate(chosen):
        for kind, make, paths in (("full", full_frame, full), ("margins", with_margins, margins)):
            photo = make(test_set[0][i], rng)
            path = folder / f"{n:03d}-{kind}{photo.suffix}"
            path.write_bytes(photo.data)
            paths.append(path)
    assert {p.suffix for p in margins} == {".jpg", ".webp", ".png"}
    return chosen, full, margins


@pytest.mark.parametrize("model", MODELS)
def test_photos_with_margins_classify_like_their_originals(model, test_set, photos) -> None:
    chosen, _, margins = photos
    classifier = Classifier(model, device="cpu")
    originals = classifier.predict(test_set[0][chosen]).labels
    trimmed = classifier.predict(margins).labels
    whole = Classifier(model, device="cpu", fit="full").predict(margins).labels
    agree, agree_whole = (trimmed == originals).mean(), (whole == originals).mean()
    print(f"{model}: top-1 as the original 28x28: trim {agree:.1%}, full {agree_whole:.1%}")
    assert agree >= 0.9, agree  # measured: 98.3% (MLP), 98.3% (CNN)
    assert agree_whole < 0.7, agree_whole  # the whole frame squeezed: the garment is lost


def test_a_trimmed_photo_looks_like_the_dataset_image(test_set, photos) -> None:
    """The prepared pixels themselves, not only the answer: close to the original 28x28."""
    chosen, full, margins = photos
    for paths in (full, margins):
        prepared = np.stack([load_image(p, TRIM) for p in paths]).astype(np.int16)
        diff = np.abs(prepared - test_set[0][chosen]).mean(axis=(1, 2))
        assert np.median(diff) < 12, np.median(diff)  # grey levels of 255
    squeezed = np.stack([load_image(p, FULL) for p in margins]).astype(np.int16)
    assert np.median(np.abs(squeezed - test_set[0][chosen]).mean(axis=(1, 2))) > 25


@pytest.mark.parametrize("model", MODELS)
def test_full_frame_photos_are_no_worse_trimmed(model, test_set, photos) -> None:
    chosen, full, _ = photos
    truth = test_set[1][chosen]
    trimmed = (Classifier(model, device="cpu").predict(full).labels == truth).mean()
    whole = (Classifier(model, device="cpu", fit="full").predict(full).labels == truth).mean()
    assert trimmed >= whole - 0.025, (trimmed, whole)  # 3 of 120: the noise of so few


def test_28x28_inputs_are_byte_identical_whatever_the_fit(test_set, tmp_path: Path) -> None:
    images = test_set[0][:40]
    paths = []
    for i, pixels in enumerate(images):
        image = Image.fromarray(pixels if i % 2 else 255 - pixels, mode="L")
        mode, suffix = [("L", ".png"), ("RGB", ".png"), ("RGB", ".bmp"), ("LA", ".png")][i % 4]
        path = tmp_path / f"{i:02d}{suffix}"
        image.convert(mode).save(path)
        paths.append(path)
    for prep in (TRIM, FULL):
        loaded = np.stack([load_image(p, prep) for p in paths])
        chunk = decode_chunk([str(p) for p in paths], prep).images
        np.testing.assert_array_equal(loaded, images)  # light ones inverted back, exactly
        np.testing.assert_array_equal(chunk, images)
    for pixels in images[:5]:
        np.testing.assert_array_equal(prepare(pixels, TRIM), pixels)


def test_fit_full_is_todays_whole_frame(test_set, photos) -> None:
    _, full, margins = photos
    pngs = [p for p in full + margins if p.suffix != ".jpg"]  # JPEG: draft mode, below
    for path in pngs:
        gray = np.asarray(Image.open(path).convert("L"))
        np.testing.assert_array_equal(load_image(path, FULL), todays_full_frame(gray))
    odd = np.full((30, 90), 255, np.uint8)
    odd[5:20, 10:70] = 0
    np.testing.assert_array_equal(prepare(odd, FULL), todays_full_frame(odd))


def test_fit_full_decodes_jpegs_as_before(photos) -> None:
    """Before #18 JPEGs were decoded at no fewer than 28 pixels a side; --fit full still is."""
    jpegs = [p for p in photos[2] if p.suffix == ".jpg"]
    for path in jpegs:
        with Image.open(path) as image:
            image.draft("L", (28, 28))
            gray = np.asarray(image.convert("L"))
        np.testing.assert_array_equal(load_image(path, FULL), todays_full_frame(gray))


@pytest.mark.parametrize("value", [0, 255])
def test_a_blank_picture_becomes_black_without_error(value, tmp_path: Path) -> None:
    path = tmp_path / f"blank{value}.jpg"
    Image.new("RGB", (300, 200), (value,) * 3).save(path)
    assert garment(working_copy(np.full((200, 300, 3), value, np.uint8))) is None
    np.testing.assert_array_equal(load_image(path, TRIM), np.zeros((28, 28), np.uint8))
    np.testing.assert_array_equal(load_image(path, FULL), np.zeros((28, 28), np.uint8))
    predictions = Classifier(device="cpu").predict([path])
    assert len(predictions) == 1 and np.isclose(predictions.probabilities.sum(), 1)


def test_a_photo_on_a_dark_background(test_set) -> None:
    """Light garment on black, with margins: the garment is what differs from the
    background, so it comes out light, cut out."""
    original = test_set[0][3]
    canvas = np.zeros((300, 400), np.uint8)
    canvas[60:270, 150:360] = np.asarray(Image.fromarray(original).resize((210, 210)))
    prepared = prepare(canvas, TRIM)
    assert prepared.mean() > 0.8 * original.mean()  # not inverted: the garment stays light
    assert np.abs(prepared.astype(int) - original).mean() < 12
    classifier = Classifier("cnn", device="cpu")
    assert classifier.predict(prepared).labels[0] == classifier.predict(original).labels[0]


def test_the_trim_ignores_sensor_noise_and_faint_shadows() -> None:
    rng = np.random.default_rng(0)
    picture = np.clip(rng.normal(228, 3, (200, 300, 3)), 0, 255)  # noisy light grey
    picture[150:170, 20:280] -= 12  # a faint shadow under the garment
    picture[40:150, 100:180] = (40, 60, 160)  # the garment
    found = garment(working_copy(picture.astype(np.uint8)))
    assert found is not None
    levels, mask = found
    # the garment's rows 40-149 and columns 100-179 (in the working copy: divided by its
    # factor), and the one pixel around them that the trim's 3x3 average reaches; not the
    # shadow's rows 150-169
    f = max(1, 300 // WORK_SIDE)
    assert bounds(mask) == (40 // f - 1, 150 // f + 1, 100 // f - 1, 180 // f + 1)
    assert levels[: 36 // f].max() == 0 and levels[160 // f :].max() < 0.2  # black


def test_the_api_and_the_cli_take_the_fit(photos, tmp_path: Path) -> None:
    _, _, margins = photos
    with pytest.raises(InvalidArgumentError, match="fit must be one of trim, full"):
        Classifier(device="cpu", fit="crop")  # type: ignore[arg-type]
    folder = tmp_path / "margins"
    folder.mkdir()
    for path in margins[:12]:
        (folder / path.name).write_bytes(path.read_bytes())
    cli = [sys.executable, "-m", "fashion_onnx.infer", str(folder), "--format", "csv"]
    rows = {}
    for fit in ("trim", "full"):
        done = subprocess.run([*cli, "--fit", fit], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert f"fit {fit}," in done.stderr.splitlines()[-1]  # the summary names the choice
        assert "fit" not in done.stdout.splitlines()[0]  # not a column of every row
        rows[fit] = sorted(done.stdout.splitlines()[1:])
        api = Classifier(device="cpu", fit=fit).predict(sorted(folder.iterdir()))
        assert [r.split(",")[2] for r in rows[fit]] == api.names
    assert rows["trim"] != rows["full"]
    bad = subprocess.run([*cli, "--fit", "crop"], capture_output=True, text=True)
    assert bad.returncode == 2 and "'crop' is not one of trim, full" in bad.stderr


def test_the_ray_decoding_step_prepares_the_same_way(photos) -> None:
    """``decode_batch`` (Ray Data's step) is called with the Preparation it is given."""
    from fashion_onnx.ray.data import decode_batch

    _, _, margins = photos
    blobs = np.array([p.read_bytes() for p in margins[:6]], dtype=object)
    for prep in (TRIM, FULL):
        out = decode_batch({"bytes": blobs}, "bytes", prep)
        expected = np.stack([load_image(p, prep) for p in margins[:6]])
        np.testing.assert_array_equal(out["image"], expected)


def test_bytes_and_paths_prepare_alike(photos) -> None:
    _, _, margins = photos
    for path in margins[:6]:
        via_bytes = decode_chunk([path.read_bytes()], TRIM).images[0]
        np.testing.assert_array_equal(via_bytes, load_image(path, TRIM))
        pil = Classifier(device="cpu").predict(Image.open(io.BytesIO(path.read_bytes())))
        assert pil.labels[0] == Classifier(device="cpu").predict(path).labels[0]
