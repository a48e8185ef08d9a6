"""Untrusted inputs: every threat gets a clear, per-item outcome and never a partial file."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from typer.testing import CliRunner

from fashion_onnx.errors import ImageError, InvalidArgumentError, ModelError
from fashion_onnx.fileio import atomic_path
from fashion_onnx.infer import Classifier
from fashion_onnx.infer import cli as infer_cli
from fashion_onnx.infer.contract import default_model_path
from fashion_onnx.infer.images import load_image
from fashion_onnx.infer.output import RowWriter
from fashion_onnx.infer.prepare import Preparation

runner = CliRunner()
NEVER = Preparation(invert="never")  # the pixels as laid out, not inverted
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(device="cpu")


@pytest.fixture(scope="module")
def real_png(test_set) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(test_set[0][0], mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


# -- ONNX models ---------------------------------------------------------------------


def _tiny_model(path: Path, in_shape: list, out_shape: list) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, out_shape)
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], keepdims=0, axes=[2, 3])]
    nodes.append(helper.make_node("Tile", ["m", "reps"], ["scores"]))
    reps = helper.make_tensor("reps", TensorProto.INT64, [2], [1, out_shape[1]])
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[reps])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)], ir_version=8)
    onnx.save(model, path)
    return path


def test_a_1000_class_model_is_refused_with_both_signatures(tmp_path: Path, real_png) -> None:
    (tmp_path / "shoe.png").write_bytes(real_png)
    path = _tiny_model(tmp_path / "big.onnx", ["N", 1, 28, 28], ["N", 1000])
    result = runner.invoke(infer_cli.app, [str(tmp_path), "--model", str(path)])
    assert result.exit_code == 2
    assert (
        "Expected inputs [input tensor(float) ['N', 1, 28, 28]] -> outputs [[N, 10]"
        in result.stderr
    )
    assert "scores tensor(float) ['N', 1000]" in result.stderr


def test_malformed_metadata_falls_back_with_warnings(tmp_path: Path, test_set) -> None:
    onnx = pytest.importorskip("onnx")

    proto = onnx.load(str(default_model_path()))
    for prop in proto.metadata_props:
        if prop.key in ("class_names", "input_scale", "background"):
            prop.value = "{not json" if prop.key != "background" else "purple"
    path = tmp_path / "odd.onnx"
    onnx.save(proto, path)
    with pytest.warns(UserWarning) as caught:
        odd = Classifier(path, device="cpu")
    messages = " ".join(str(w.message) for w in caught)
    for key in ("class_names", "input_scale", "background"):
        assert f"{key} missing or malformed" in messages
    images = test_set[0][:50]
    expected = Classifier(device="cpu").predict(images).probabilities
    np.testing.assert_array_equal(odd.predict(images).probabilities, expected)


MODEL_BYTES = default_model_path().read_bytes()


@given(cut=st.integers(min_value=0, max_value=len(MODEL_BYTES) - 1))
@PROPERTY
def test_a_truncated_onnx_file_is_always_a_model_error(cut: int, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("cut") / "cut.onnx"
    path.write_bytes(MODEL_BYTES[:cut])
    with pytest.raises(ModelError, match=f"{path}: (empty file|not a loadable ONNX model)"):
        Classifier(path, device="cpu")


# -- images --------------------------------------------------------------------------


def _write(folder: Path, name: str, image: Image.Image, **kwargs) -> Path:
    path = folder / name
    image.save(path, **kwargs)
    return path


def test_every_mode_gives_the_grayscale_originals_pixels(tmp_path, classifier, test_set):
    """Each mode is compared with the 8-bit grayscale original through the same preparation
    (load_image), pixel by pixel: none may be skipped or approximated (JPEG's CMYK aside)."""
    pixels = test_set[0][:30]
    labels = classifier.predict(pixels).labels
    for i, p in enumerate(pixels):
        gray = Image.fromarray(p, mode="L")
        folder = tmp_path / str(i)
        folder.mkdir()
        original = load_image(_write(folder, "gray.png", gray), NEVER)
        exact = [
            _write(folder, "rgb.png", gray.convert("RGB")),
            _write(folder, "rgba-opaque.png", gray.convert("RGBA")),
            _write(folder, "palette.png", gray.convert("P")),
            _write(folder, "sixteen.png", Image.fromarray(p.astype(np.uint16) * 257)),
            _write(
                folder,
                "anim.gif",
                gray,
                save_all=True,
                append_images=[Image.new("L", (28, 28), 255)],
            ),
        ]
        assert Image.open(exact[3]).mode == "I;16", "a real 16-bit PNG"
        for path in exact:
            np.testing.assert_array_equal(load_image(path, NEVER), original, path.name)
        cmyk = _write(folder, "cmyk.jpg", gray.convert("CMYK"), quality=100)
        diff = load_image(cmyk, NEVER).astype(int) - original
        assert np.abs(diff).mean() < 2, "JPEG: close, not exact"
        got = classifier.predict([*exact, cmyk])
        assert (got.labels[:-1] == labels[i]).all(), (i, got.names)


def _cut_outs(p: np.ndarray) -> dict[str, Image.Image]:
    """The garment of ``p`` as a dark cut-out on a transparent background, in each mode
    that carries transparency. Hidden under every transparent pixel is black, so an image
    whose transparency is ignored comes out black there instead of white."""
    dark = np.where(p == 0, 0, 255 - p).astype(np.uint8)  # black where transparent
    alpha = np.where(p == 0, 0, 255).astype(np.uint8)
    rgba = np.dstack([dark, dark, dark, alpha])
    palette = Image.fromarray(np.where(p == 0, 0, np.maximum(255 - p, 1)).astype(np.uint8), "P")
    palette.putpalette([v for i in range(256) for v in (i, i, i)])  # index 0: black...
    palette.info["transparency"] = 0  # ...and transparent
    shadow = np.dstack([np.zeros_like(p)] * 3 + [p])  # black, as opaque as p is bright
    return {
        "rgba.png": Image.fromarray(rgba, "RGBA"),
        "la.png": Image.fromarray(np.dstack([dark, alpha]), "LA"),
        "palette.png": palette,
        "shadow.png": Image.fromarray(shadow, "RGBA"),
    }


def test_transparent_images_are_laid_on_white(tmp_path, classifier, test_set) -> None:
    """A cut-out on a transparent background is the product photo a white background
    makes: laid on white, then inverted by --invert auto, it is the original again."""
    pixels = test_set[0][:30]
    labels = classifier.predict(pixels).labels
    for i, p in enumerate(pixels):
        folder = tmp_path / str(i)
        folder.mkdir()
        on_white = np.where(p == 0, 255, np.maximum(255 - p, 1)).astype(np.uint8)
        white_palette = load_image(_write(folder, "w.png", Image.fromarray(on_white, "L")), NEVER)
        white = load_image(_write(folder, "x.png", Image.fromarray(255 - p, "L")), NEVER)
        original = load_image(_write(folder, "o.png", Image.fromarray(p, "L")))
        paths = []
        for name, image in _cut_outs(p).items():
            path = _write(folder, name, image)
            paths.append(path)
            want = white_palette if name == "palette.png" else white
            got = load_image(path, NEVER)
            np.testing.assert_allclose(got, want, atol=1 if name == "shadow.png" else 0)
            if name != "palette.png":
                np.testing.assert_allclose(load_image(path), original, atol=1)  # auto: inverted
        assert (classifier.predict(paths).labels == labels[i]).all(), i


def test_an_animated_gif_uses_its_first_frame(tmp_path, classifier, test_set) -> None:
    first = Image.fromarray(test_set[0][0], mode="L")
    other = Image.fromarray(test_set[0][1], mode="L")
    path = _write(tmp_path, "anim.gif", first, save_all=True, append_images=[other, other])
    np.testing.assert_array_equal(load_image(path), np.asarray(first))


def test_a_symlink_loop_is_reported_once_and_the_rest_classified(tmp_path, real_png) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(real_png)
    (root / "a" / "loop").symlink_to(root)
    result = runner.invoke(infer_cli.app, [str(root), "--format", "jsonl"])
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 1
    assert f"{root / 'a' / 'loop'}: symlink loop" in result.stderr


def test_an_unreadable_file_is_reported(tmp_path, real_png, monkeypatch) -> None:
    good, locked = tmp_path / "good.png", tmp_path / "locked.png"
    good.write_bytes(real_png)
    locked.write_bytes(real_png)
    locked.chmod(0)  # enough when not root; root reads anything, so also refuse it here:
    real_open = os.open  # (files are read with os.open: four system calls, no buffering)

    def guarded(file, *args, **kwargs):
        if os.fspath(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)
    result = runner.invoke(infer_cli.app, [str(tmp_path), "--format", "jsonl"])
    assert result.exit_code == 1
    assert f"{locked}: permission denied" in result.stderr
    assert json.loads(result.stdout)["path"] == str(good)


@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".png", ".jpg", ".gif", ".tif"]))
@PROPERTY
def test_random_bytes_as_an_image_give_a_result_or_an_image_error(data, suffix, tmp_path_factory):
    path = tmp_path_factory.mktemp("rnd") / f"x{suffix}"
    path.write_bytes(data)
    try:
        out = load_image(path)
    except ImageError as exc:
        assert str(exc)
    else:
        assert out.shape == (28, 28) and out.dtype == np.uint8


@given(cut=st.integers(min_value=0, max_value=10_000))
@PROPERTY
def test_a_truncated_png_is_refused_unless_its_pixels_survive(
    cut, real_png, test_set, tmp_path_factory
):
    """Cut anywhere, a PNG either decodes to exactly the original pixels (the cut spared
    every pixel, e.g. only IEND went) or is refused with a one-line reason."""
    cut %= len(real_png) + 1
    path = tmp_path_factory.mktemp("png") / "cut.png"
    path.write_bytes(real_png[:cut])
    try:
        pixels = load_image(path, Preparation(invert="never"))
    except ImageError as exc:
        assert cut < len(real_png), "the whole file must decode"
        assert "\n" not in str(exc) and str(exc)
    else:
        np.testing.assert_array_equal(pixels, test_set[0][0])


def _array_problem(array: np.ndarray) -> str | None:
    """What ``predict`` must say about ``array``: None when it is a valid input."""
    shape = array.shape
    if array.ndim == 4 and shape[1] == 1:
        shape = (shape[0], *shape[2:])
    elif array.ndim == 2:
        shape = (1, *shape)
    if len(shape) != 3 or shape[1:] != (28, 28):
        return "array shape"
    if array.dtype == np.uint8:
        return None
    if array.dtype.kind != "f":
        return f"array dtype {array.dtype}"
    if array.size and not np.isfinite(array).all():
        return "NaN or infinity"
    if array.size and (array.min() < 0 or array.max() > 1):
        return "must lie in \\[0, 1\\]"
    return None


@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.float32, np.float64, np.int32, np.bool_, np.complex64]),
        shape=st.one_of(
            hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=30),
            st.sampled_from([(28, 28), (3, 28, 28), (2, 1, 28, 28)]),
        ),
    )
    | hnp.arrays(np.float32, (2, 28, 28), elements=st.floats(0, 1, width=32))
)
@PROPERTY
def test_random_arrays_give_predictions_or_the_documented_error(array, classifier) -> None:
    problem = _array_problem(array)
    if problem is not None:
        with pytest.raises(InvalidArgumentError, match=problem):
            classifier.predict(array)
        return
    result = classifier.predict(array)
    assert result.probabilities.shape == (1 if array.ndim == 2 else len(array), 10)
    np.testing.assert_allclose(result.probabilities.sum(1), 1, atol=1e-5)


# -- outputs -------------------------------------------------------------------------


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "out.csv"
    dest.write_text("previous content")
    with pytest.raises(KeyboardInterrupt), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert dest.read_text() == "previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_ctrl_c_during_inference_leaves_no_output_file_only_the_journal(
    tmp_path, real_png, monkeypatch
) -> None:
    """Ctrl-C never leaves a half-written FILE: what is done stays in FILE.partial for
    --resume (issue #21; tests/test_resume.py covers the resume itself)."""
    for i in range(5):
        (tmp_path / f"{i}.png").write_bytes(real_png)
    out = tmp_path / "out" / "predictions.csv"
    out.parent.mkdir()

    def interrupted(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(RowWriter, "write_rendered", interrupted)
    result = runner.invoke(infer_cli.app, [str(tmp_path), "--format", "csv", "-o", str(out)])
    assert result.exit_code == 130
    assert "interrupted: 0 of the images are saved in" in result.stderr
    assert "--resume" in result.stderr
    assert not out.exists() and [p.name for p in out.parent.iterdir()] == [
        "predictions.csv.partial"
    ]


def test_debug_shows_the_traceback(tmp_path: Path, real_png) -> None:
    (tmp_path / "a.png").write_bytes(real_png)  # an input, so the run reaches the model
    args = [str(tmp_path), "--model", str(tmp_path / "x.onnx")]
    result = runner.invoke(infer_cli.app, args)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert f"error: {tmp_path / 'x.onnx'}: no such model file" in result.stderr
    assert "Traceback" not in result.output
    debug = runner.invoke(infer_cli.app, [*args, "--debug"])
    assert isinstance(debug.exception, ModelError)
    assert "no such model file" in str(debug.exception)


def test_debug_prints_the_traceback_from_the_command(tmp_path: Path, real_png) -> None:
    import subprocess
    import sys

    (tmp_path / "a.png").write_bytes(real_png)
    model = tmp_path / "x.onnx"
    command = [sys.executable, "-m", "fashion_onnx.infer", str(tmp_path), "--model", str(model)]
    env = {**os.environ, "COLUMNS": "250"}  # no line of the traceback is wrapped
    plain = subprocess.run(command, capture_output=True, text=True, env=env)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = subprocess.run([*command, "--debug"], capture_output=True, text=True, env=env)
    assert debug.returncode == 1, debug.stderr  # a traceback is Python's own exit
    err = debug.stderr
    assert "Traceback (most recent call last)" in err
    assert "contract.py" in err and " in read_model" in err  # the frame that raised
    assert f"ModelError: {model}: no such model file" in err
    assert "error:" not in err


# -- directories that cannot be listed ---------------------------------------------------


class _ListingFails:
    """``os.scandir(path)`` that gives ``after`` entries, then fails as the kernel can
    (``/proc/1/map_files`` does so even for root)."""

    def __init__(self, path, after: int, scandir) -> None:
        self.inner, self.after = scandir(path), after
        self.error = PermissionError(13, "Permission denied", os.fspath(path))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.inner.close()

    def __iter__(self):
        return self

    def __next__(self):
        if self.after == 0:
            raise self.error
        self.after -= 1
        return next(self.inner)


SCANDIR_FAILS = """
import os, sys
real = os.scandir
{cls}
def scandir(path):
    name = os.path.basename(os.fspath(path))
    if name == "closed":
        raise PermissionError(13, "Permission denied", os.fspath(path))
    if name == "half":
        return _ListingFails(path, 1, real)
    return real(path)
os.scandir = scandir
from fashion_onnx.infer.cli import main
sys.argv = ["fashion-infer", *sys.argv[1:]]
main()
"""


@pytest.fixture
def unlistable(tmp_path, real_png) -> Path:
    """good/ (one image), half/ (two; listing fails after the first), closed/ (one;
    listing fails at once), and a.png at the top."""
    tree = {"good": ["g.png"], "half": ["h1.png", "h2.png"], "closed": ["c.png"]}
    for folder, names in tree.items():
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).write_bytes(real_png)
    (tmp_path / "a.png").write_bytes(real_png)
    return tmp_path


def test_a_directory_that_fails_to_list_is_one_failure_in_the_library(
    unlistable, classifier, monkeypatch
) -> None:
    real = os.scandir

    def scandir(path):
        name = os.path.basename(os.fspath(path))
        if name == "closed":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return _ListingFails(path, 1, real) if name == "half" else real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    batches = list(classifier.classify_files(unlistable, workers=1))
    failures = {f.path: f.reason for b in batches for f in b.failures}
    assert failures == {
        str(unlistable / "half"): "permission denied (directory)",
        str(unlistable / "closed"): "permission denied (directory)",
    }
    paths = [p for b in batches for p in b.paths]
    assert len(paths) == 3  # a.png, g.png and the one entry half/ gave before failing


def test_a_directory_that_fails_to_list_is_one_line_from_the_command(unlistable) -> None:
    import inspect
    import subprocess
    import sys

    code = SCANDIR_FAILS.format(cls=inspect.getsource(_ListingFails))
    result = subprocess.run(
        [sys.executable, "-c", code, str(unlistable), "--format", "jsonl"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{unlistable / 'half'}: permission denied (directory)" in result.stderr.splitlines()
    assert f"{unlistable / 'closed'}: permission denied (directory)" in result.stderr.splitlines()
    assert len(result.stdout.splitlines()) == 3
    assert "3 image(s) classified, 2 failed" in result.stderr


def test_a_proc_directory_that_even_root_cannot_list(real_png, tmp_path) -> None:
    import subprocess
    import sys

    unlistable = "/proc/1/map_files"
    try:
        with os.scandir(unlistable) as entries:
            list(entries)
    except OSError:
        pass
    else:
        pytest.skip(f"{unlistable} can be listed here")
    (tmp_path / "a.png").write_bytes(real_png)
    result = subprocess.run(
        [sys.executable, "-m", "fashion_onnx.infer", unlistable, str(tmp_path / "a.png")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[0] == f"{unlistable}: permission denied (directory)"
    assert "Traceback" not in result.stderr
