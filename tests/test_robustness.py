"""Untrusted inputs: every threat gets a clear, per-item outcome and never a partial file."""

from __future__ import annotations

import builtins
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

from fashion_onnx.errors import CheckpointError, ImageError, ModelError
from fashion_onnx.fileio import atomic_path
from fashion_onnx.infer import Classifier
from fashion_onnx.infer import cli as infer_cli
from fashion_onnx.infer.images import load_image
from fashion_onnx.infer.output import RowWriter
from fashion_onnx.infer.runtime import default_model_path
from fashion_onnx.models import load_model

runner = CliRunner()
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(device="cpu")


@pytest.fixture(scope="module")
def real_png(fashion_data) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(fashion_data.test_images[0].numpy(), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


# -- checkpoints ---------------------------------------------------------------------


def test_an_onnx_file_given_as_a_checkpoint_is_named_and_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    path.write_bytes(default_model_path().read_bytes())
    with pytest.raises(CheckpointError, match=f"{path}: not a readable PyTorch checkpoint"):
        load_model(path)


# -- ONNX models ---------------------------------------------------------------------


def _tiny_model(path: Path, in_shape: list, out_shape: list) -> Path:
    import onnx
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


def test_malformed_metadata_falls_back_with_warnings(tmp_path: Path, fashion_data) -> None:
    import onnx

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
    images = fashion_data.test_images[:50].numpy()
    expected = Classifier(device="cpu").predict(images).probabilities
    np.testing.assert_array_equal(odd.predict(images).probabilities, expected)


@given(cut=st.floats(min_value=0.0, max_value=0.999))
@PROPERTY
def test_a_truncated_onnx_file_is_a_model_error_or_still_valid(
    cut: float, tmp_path_factory
) -> None:
    data = default_model_path().read_bytes()
    path = tmp_path_factory.mktemp("cut") / "cut.onnx"
    path.write_bytes(data[: int(len(data) * cut)])
    try:
        Classifier(path, device="cpu")
    except ModelError as exc:
        assert str(exc)
    # No other exception type may escape.


# -- images --------------------------------------------------------------------------


def _write(folder: Path, name: str, image: Image.Image, **kwargs) -> Path:
    path = folder / name
    image.save(path, **kwargs)
    return path


def test_modes_and_formats_classify_like_the_grayscale_original(tmp_path, classifier, fashion_data):
    pixels = fashion_data.test_images[:30].numpy()
    labels = classifier.predict(pixels).labels
    for i, p in enumerate(pixels):
        gray = Image.fromarray(p, mode="L")
        folder = tmp_path / str(i)
        folder.mkdir()
        paths = [
            _write(folder, "rgb.png", gray.convert("RGB")),
            _write(folder, "rgba.png", gray.convert("RGBA")),
            _write(folder, "palette.png", gray.convert("P")),
            _write(folder, "sixteen.png", Image.fromarray(p.astype(np.uint16) * 257)),
            _write(folder, "cmyk.jpg", gray.convert("CMYK"), quality=100),
            _write(
                folder,
                "anim.gif",
                gray,
                save_all=True,
                append_images=[Image.new("L", (28, 28), 255)],
            ),
        ]
        got = classifier.predict(paths)
        assert (got.labels == labels[i]).sum() >= 5, (i, got.names)  # JPEG may shift one


def test_an_animated_gif_uses_its_first_frame(tmp_path, classifier, fashion_data) -> None:
    first = Image.fromarray(fashion_data.test_images[0].numpy(), mode="L")
    other = Image.fromarray(fashion_data.test_images[1].numpy(), mode="L")
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
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if os.fspath(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
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
def test_a_truncated_png_gives_a_result_or_an_image_error(cut, real_png, tmp_path_factory):
    path = tmp_path_factory.mktemp("png") / "cut.png"
    path.write_bytes(real_png[: cut % (len(real_png) + 1)])
    try:
        load_image(path)
    except ImageError as exc:
        assert str(exc)


@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.float32, np.float64, np.int32, np.bool_, np.complex64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=30),
    )
)
@PROPERTY
def test_random_arrays_give_predictions_or_a_documented_error(array, classifier) -> None:
    try:
        result = classifier.predict(array)
    except (ValueError, TypeError) as exc:
        assert str(exc)
    else:
        assert result.probabilities.shape[1] == 10
        assert np.isfinite(result.probabilities).all()


# -- outputs -------------------------------------------------------------------------


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "out.csv"
    dest.write_text("previous content")
    with pytest.raises(KeyboardInterrupt), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert dest.read_text() == "previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_ctrl_c_during_inference_leaves_no_output_file(tmp_path, real_png, monkeypatch) -> None:
    for i in range(5):
        (tmp_path / f"{i}.png").write_bytes(real_png)
    out = tmp_path / "out" / "predictions.csv"

    def interrupted(self, paths, probabilities):
        raise KeyboardInterrupt

    monkeypatch.setattr(RowWriter, "write", interrupted)
    result = runner.invoke(infer_cli.app, [str(tmp_path), "--format", "csv", "-o", str(out)])
    assert result.exit_code == 130
    assert "no partial output" in result.stderr
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = runner.invoke(infer_cli.app, [str(tmp_path), "--model", str(tmp_path / "x.onnx")])
    assert result.exit_code == 2 and result.exception is not None  # SystemExit only
    assert "Traceback" not in result.output
    (tmp_path / "a.png").write_bytes(b"")
    debug = runner.invoke(
        infer_cli.app, [str(tmp_path), "--model", str(tmp_path / "x.onnx"), "--debug"]
    )
    assert isinstance(debug.exception, ModelError)
