"""Photos as phones and shops take them (issue #30): colour, grey and pastel backgrounds lit
unevenly, shadows, tilt, noise, and EXIF orientation wherever a file is decoded."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from fashion_onnx.infer import Classifier
from fashion_onnx.infer.decode import decode_chunk
from fashion_onnx.infer.images import load_image, upright
from fashion_onnx.infer.photo import (
    WORK_SIDE,
    _box3,
    _tilt_by_edges,
    garment,
    prepare_photo,
    tilt,
    working_copy,
)
from fashion_onnx.infer.prepare import Preparation
from fashion_onnx.photosets import ORIENTATIONS, STORED_TURN, shot_as_taken

TRIM = Preparation()
MODELS = ["mlp", "cnn"]
COUNT = 300  # photos as taken: a point is 3 photos, the paired noise about a point


@pytest.fixture(scope="module")
def taken(test_set) -> tuple[np.ndarray, list[bytes]]:
    """COUNT real test garments photographed as taken (seed 30): (indices, file bytes)."""
    rng = np.random.default_rng(30)
    chosen = np.sort(rng.choice(len(test_set[0]), COUNT, replace=False))
    return chosen, [shot_as_taken(test_set[0][i], rng).save().data for i in chosen]


@pytest.mark.parametrize("model", MODELS)
def test_photos_as_taken_classify_nearly_as_their_originals(model, test_set, taken) -> None:
    chosen, files = taken
    truth = test_set[1][chosen]
    classifier = Classifier(model, device="cpu")
    original = (classifier.predict(test_set[0][chosen]).labels == truth).mean()
    prepared = decode_chunk(files, TRIM).images
    photos = (classifier.predict(prepared).labels == truth).mean()
    print(f"{model}: 28x28 {original:.1%}, as taken {photos:.1%}")
    # bench/photos.py measures the target (within 3 points) on 2,000; before #30 these
    # scored 25-30% here. Measured on these 300 (an AMD EPYC): MLP -1.0, CNN -1.3 points.
    assert photos >= original - 0.05, (original, photos)


def test_the_background_becomes_black_and_the_garment_full_brightness(test_set, taken) -> None:
    chosen, files = taken
    prepared = decode_chunk(files[:60], TRIM).images.astype(int)
    original = test_set[0][chosen[:60]].astype(int)
    # where the dataset's image is black two pixels around, the prepared one is too
    far = np.ones_like(original, dtype=bool)
    padded = np.pad(original, ((0, 0), (2, 2), (2, 2)))
    for dy in range(5):
        for dx in range(5):
            far &= padded[:, dy : dy + 28, dx : dx + 28] == 0
    assert prepared[far].mean() < 3, prepared[far].mean()
    assert np.median(prepared.max(axis=(1, 2))) >= 250


def test_a_garment_as_light_as_its_background_is_found_by_its_colour(test_set) -> None:
    """A yellow shirt on pink: the same grey level, told apart by colour."""
    ink = test_set[0][1].astype(np.float32)[..., None] / 255  # a pullover
    pink, yellow = np.array([240, 160, 190]), np.array([220, 200, 60])
    assert abs(np.dot(pink, [0.299, 0.587, 0.114]) - np.dot(yellow, [0.299, 0.587, 0.114])) < 5
    garment_pixels = pink * (1 - ink) + yellow * ink
    canvas = np.tile(pink, (300, 400, 1)).astype(np.float32)
    canvas[50:260, 120:330] = np.asarray(
        Image.fromarray(garment_pixels.astype(np.uint8)).resize((210, 210), Image.BICUBIC)
    )
    gray = np.asarray(Image.fromarray(canvas.astype(np.uint8)).convert("L")).astype(int)
    assert gray.max() - gray.min() <= 6  # in grey levels, nearly nothing to find
    prepared = prepare_photo(canvas.astype(np.uint8))
    assert prepared.max() >= 250  # the garment at full brightness
    assert abs(prepared.mean() / test_set[0][1].mean() - 1) < 0.3
    for model in MODELS:
        assert Classifier(model, device="cpu").predict(prepared).labels[0] == test_set[1][1]


def test_a_lighting_gradient_and_a_vignette_stay_black(test_set) -> None:
    h, w = 360, 480
    ys, xs = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None] - 0.5
    light = 1 + 0.25 * xs - 0.2 * ys - 0.3 * (xs**2 + ys**2)
    scene = np.array([210, 205, 190])[None, None] * light[..., None]
    ink = np.asarray(Image.fromarray(test_set[0][0]).resize((200, 200), Image.BICUBIC)) / 255
    scene[80:280, 140:340] *= 1 - 0.8 * ink[..., None]
    levels, mask = garment(working_copy(np.clip(scene, 0, 255).astype(np.uint8)))
    assert levels[:, :20].max() < 0.05 and levels[-20:].max() < 0.05  # far from the garment
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    inked_rows, inked_cols = np.flatnonzero(ink.max(1) > 0.1), np.flatnonzero(ink.max(0) > 0.1)
    scale = max(1, 480 // WORK_SIDE)  # the working copy's factor
    for found, inked, offset in ((rows, inked_rows, 80), (cols, inked_cols, 140)):
        assert abs(found[0] * scale - (offset + inked[0])) <= 2 * scale
        assert abs(found[-1] * scale - (offset + inked[-1])) <= 2 * scale


@pytest.mark.parametrize("degrees", [-10, -6, 6, 10])
def test_a_tilted_garment_is_measured_and_stood_upright(degrees, test_set) -> None:
    """Clothes by their edges, shoes (wider than tall) by their bounding box: the
    estimate is the turn back, within 3 degrees for clothes and 5 for shoes (on
    bench/photos.py's set the median errors are 0.6-0.9 and 1.3-2.3 degrees)."""
    for index in (0, 1, 2, 3, 5, 7):  # ankle boot, pullover, trousers x2, sandal, sneaker
        ink = Image.fromarray(test_set[0][index]).resize((200, 200), Image.BICUBIC)
        turned = np.asarray(ink.rotate(degrees, Image.BICUBIC, expand=True)) / 255
        canvas = np.full((400, 400, 3), 230.0)
        top = (400 - turned.shape[0]) // 2
        canvas[top : top + turned.shape[0], top : top + turned.shape[1]] *= 1 - turned[..., None]
        levels, mask = garment(working_copy(canvas.astype(np.uint8)))
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        box = (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1)
        shoe = test_set[1][index] in (5, 7, 9)
        error = abs(tilt(levels, mask, box) + degrees)
        assert error <= (5 if shoe else 3), (index, error)


def test_a_garment_barely_tilted_is_left_as_it_is(test_set) -> None:
    ink = np.asarray(Image.fromarray(test_set[0][1]).resize((200, 200), Image.BICUBIC)) / 255
    canvas = np.full((400, 400, 3), 230.0)
    canvas[100:300, 100:300] *= 1 - ink[..., None]
    levels, mask = garment(working_copy(canvas.astype(np.uint8)))
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    assert tilt(levels, mask, (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1)) == 0


# -- EXIF orientation ------------------------------------------------------------------


@pytest.mark.parametrize("turn", range(1, 9))
def test_upright_is_pillows_exif_transpose(turn: int) -> None:
    stored = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = turn
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(buffer)))
    np.testing.assert_array_equal(upright(stored, turn), shown)


@pytest.fixture(scope="module")
def turned_files(test_set, tmp_path_factory) -> tuple[Path, list[Path], list[Path]]:
    """Photos as taken saved twice: upright, and stored turned with the EXIF tag that
    shows them upright (every orientation; PNG and JPEG)."""
    folder = tmp_path_factory.mktemp("exif")
    rng = np.random.default_rng(31)
    upright_paths, turned_paths = [], []
    for n in range(16):
        shot = shot_as_taken(test_set[0][n], rng)
        orientation = ORIENTATIONS[n % len(ORIENTATIONS)] if n % 8 else 2 + n % 7
        for kind, photo, paths in (
            ("up", shot.save(), upright_paths),
            ("turned", shot.save(orientation), turned_paths),
        ):
            path = folder / f"{n:02d}-{kind}{photo.suffix}"
            path.write_bytes(photo.data)
            paths.append(path)
    assert {p.suffix for p in turned_paths} == {".jpg", ".png"}
    return folder, upright_paths, turned_paths


def test_a_png_stored_turned_prepares_exactly_as_upright(turned_files) -> None:
    _, up, turned = turned_files
    pairs = [(a, b) for a, b in zip(up, turned, strict=True) if a.suffix == ".png"]
    assert pairs
    for a, b in pairs:  # lossless: the same pixels once turned back
        np.testing.assert_array_equal(load_image(b, TRIM), load_image(a, TRIM))
        np.testing.assert_array_equal(
            decode_chunk([b.read_bytes()], TRIM).images, decode_chunk([str(a)], TRIM).images
        )


def test_every_decoder_honours_the_tag(turned_files) -> None:
    """fashion-infer's workers, the server and the Ray steps (decode_chunk, from paths or
    bytes) and Classifier (paths, PIL images) agree on the stored-turned files, and a
    JPEG's turned pixels land within a few levels of the upright file's."""
    from fashion_onnx.ray.data import decode_batch

    _, up, turned = turned_files
    via_paths = decode_chunk([str(p) for p in turned], TRIM).images
    via_bytes = decode_chunk([p.read_bytes() for p in turned], TRIM).images
    via_ray = decode_batch({"b": np.array([p.read_bytes() for p in turned], object)}, "b", TRIM)
    via_pil = np.stack([load_image(p, TRIM) for p in turned])
    np.testing.assert_array_equal(via_paths, via_bytes)
    np.testing.assert_array_equal(via_paths, via_ray["image"])
    np.testing.assert_array_equal(via_paths, via_pil)
    upright_images = decode_chunk([str(p) for p in up], TRIM).images
    mean_diff = np.abs(via_paths.astype(int) - upright_images).mean(axis=(1, 2))
    assert np.median(mean_diff) < 3, mean_diff  # without the tag: garments on their side
    ignored = np.stack([_ignoring_the_tag(p) for p in turned])
    assert np.median(np.abs(ignored.astype(int) - upright_images).mean(axis=(1, 2))) > 15


def _ignoring_the_tag(path: Path) -> np.ndarray:
    data = io.BytesIO()
    image = Image.open(path)
    image.save(data, format="PNG")  # the stored pixels, without the tag
    return load_image(io.BytesIO(data.getvalue()), TRIM)  # type: ignore[arg-type]


def test_the_command_honours_the_tag(turned_files) -> None:
    folder, up, turned = turned_files
    done = subprocess.run(
        [sys.executable, "-m", "fashion_onnx.infer", str(folder), "--format", "csv"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    rows = dict(line.split(",", 1) for line in done.stdout.splitlines()[1:])
    labels = {Path(k).name: v.split(",")[1] for k, v in rows.items()}
    agree = [labels[a.name] == labels[b.name] for a, b in zip(up, turned, strict=True)]
    assert sum(agree) >= len(agree) - 1, labels


def test_a_file_without_the_tag_is_not_parsed_for_one(tmp_path: Path) -> None:
    """The cost of the check for the common file: one dictionary lookup."""
    from fashion_onnx.infer import images

    path = tmp_path / "plain.jpg"
    Image.new("RGB", (300, 200), (200, 100, 50)).save(path)
    with Image.open(path) as image:
        image.getexif = None  # type: ignore[method-assign]  # would raise if called
        assert images.orientation(image) == 1


def test_stored_turns_are_inverses_of_the_viewers() -> None:
    picture = Image.fromarray(np.arange(6 * 4, dtype=np.uint8).reshape(4, 6))
    for orientation, stored in STORED_TURN.items():
        exif = Image.Exif()
        exif[0x0112] = orientation
        buffer = io.BytesIO()
        picture.transpose(stored).save(buffer, format="PNG", exif=exif.tobytes())
        shown = ImageOps.exif_transpose(Image.open(buffer))
        np.testing.assert_array_equal(np.asarray(shown), np.asarray(picture))


@pytest.mark.parametrize("shape", [(3, 37, 52), (41, 1), (1, 1), (2, 3), (3, 1, 5), (5, 2)])
def test_the_3x3_mean_is_the_edge_padded_one(shape) -> None:
    """photo._box3 sums in place; the graph pads the edges and adds slices: the same sums
    in the same order, so the same float32 bits, strips and single pixels included."""
    x = (np.random.default_rng(7).random(shape) * 255).astype(np.float32)
    pad = [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(x, pad, mode="edge")
    rows = (p[..., 1:-1, :] + p[..., :-2, :]) + p[..., 2:, :]
    expected = ((rows[..., 1:-1] + rows[..., :-2]) + rows[..., 2:]) * np.float32(1 / 9)
    np.testing.assert_array_equal(_box3(x), expected)


def test_the_edge_angle_is_the_3x3_sobel_ones() -> None:
    """The separable gradients give the tilt the full 3x3 Sobel kernels give."""
    levels = np.zeros((40, 30), np.float32)
    levels[8:30, 6:22] = 1
    turned = np.asarray(
        Image.fromarray((levels * 255).astype(np.uint8)).rotate(7, resample=Image.BILINEAR),
        np.float32,
    ) / np.float32(255)
    p = np.pad(turned, 1)
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    gx2, gy2 = gx * gx, gy * gy
    mag2 = gx2 + gy2
    inv = np.where(mag2 > 0, 1 / np.where(mag2 > 0, mag2, 1), 0).astype(np.float32)
    real = float((((gx2 * gx2 + gy2 * gy2) - 6 * (gx2 * gy2)) * inv).sum())
    imag = float((4 * ((gx * gy) * (gx2 - gy2)) * inv).sum())
    expected = np.degrees(np.arctan2(imag, real)) / 4
    assert abs(expected) > 3  # the picture is tilted: the check is not of a zero
    assert _tilt_by_edges(turned) == pytest.approx(expected, abs=1e-4)
