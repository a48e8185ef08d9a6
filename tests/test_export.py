import pytest

pytest.importorskip("torch", reason="needs the [train] extra")

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from typer.testing import CliRunner

from fashion_onnx.constants import CLASS_NAMES
from fashion_onnx.errors import CheckpointError, ExportValidationError
from fashion_onnx.export import api as export_api
from fashion_onnx.export import export_onnx
from fashion_onnx.export.cli import app
from fashion_onnx.export.verify import structure_problems
from fashion_onnx.models import NeuralNetwork, load_model
from fashion_onnx.train.data import to_input
from tests.quickstart import NeuralNetwork as QuickstartNetwork


def onnx_outputs(path: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, probs = session.run(["logits", "probabilities"], {"input": images})
    return logits, probs


def torch_outputs(model: torch.nn.Module, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(images))
        return logits.numpy(), torch.softmax(logits, 1).numpy()


def test_parity_on_the_full_real_test_set(exported, trained_checkpoint, fashion_data) -> None:
    images = to_input(fashion_data.test_images).numpy()
    want_logits, want_probs = torch_outputs(load_model(trained_checkpoint), images)
    got_logits, got_probs = onnx_outputs(Path(exported.path), images)
    assert np.abs(got_logits - want_logits).max() <= 1e-5
    assert np.abs(got_probs - want_probs).max() <= 1e-6
    assert (got_logits.argmax(1) == want_logits.argmax(1)).all()
    # The report says the same, on the same real data.
    parity = exported.parity
    assert parity.data == "FashionMNIST test set" and parity.images == 10_000
    assert parity.batch_sizes == (1, 2, 7, 64, 10_000)
    assert parity.max_abs_logits <= 1e-5 and parity.argmax_agreement == 1.0
    assert parity.onnx_accuracy == parity.torch_accuracy > 0.8


@pytest.mark.parametrize("batch", [1, 2, 7, 64, 1000])
@pytest.mark.parametrize("which", ["untrained", "trained"])
def test_parity_on_random_inputs_at_every_batch_size(
    batch: int, which: str, tmp_path: Path, trained_checkpoint, exported
) -> None:
    if which == "untrained":
        torch.manual_seed(123)
        model = NeuralNetwork().eval()
        ckpt = tmp_path / "untrained.pth"
        torch.save(model.state_dict(), ckpt)
        path = Path(export_onnx(ckpt, tmp_path / "untrained.onnx", use_real_data=False).path)
    else:
        model, path = load_model(trained_checkpoint), Path(exported.path)
    images = np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32)
    want_logits, want_probs = torch_outputs(model, images)
    got_logits, got_probs = onnx_outputs(path, images)
    assert got_logits.shape == (batch, 10)  # one file, every batch size
    assert np.abs(got_logits - want_logits).max() <= 1e-5
    assert np.abs(got_probs - want_probs).max() <= 1e-6
    assert (got_logits.argmax(1) == want_logits.argmax(1)).all()


def test_the_batch_axis_is_dynamic_and_the_file_is_single(exported) -> None:
    model = onnx.load(exported.path)
    (graph_input,) = model.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value
    assert [d.dim_value for d in dims[1:]] == [1, 28, 28]
    assert [o.name for o in model.graph.output] == [
        "logits",
        "probabilities",
        "calibrated_probabilities",
    ]
    assert {op.domain or "ai.onnx": op.version for op in model.opset_import}["ai.onnx"] == 18
    assert not [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert sorted(p.name for p in Path(exported.path).parent.iterdir()) == [
        "model.fp16.onnx",
        "model.int8.onnx",
        "model.onnx",
    ]


def test_metadata_round_trips_through_onnxruntime(exported, trained_checkpoint) -> None:
    session = ort.InferenceSession(exported.path, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["class_names"]) == list(CLASS_NAMES)
    assert meta["input_layout"] == "NCHW"
    assert json.loads(meta["input_shape"]) == ["N", 1, 28, 28]
    assert json.loads(meta["input_scale"])["divide_by"] == 255.0
    assert json.loads(meta["input_scale"])["range"] == [0.0, 1.0]
    assert meta["background"] == "dark"
    assert "784-512" in meta["architecture"]
    assert meta["source_checkpoint_sha256"] == export_api.sha256_file(trained_checkpoint)
    assert meta["opset"] == "18"
    assert meta["torch_version"] == torch.__version__
    assert meta["precision"] == "fp32"
    assert float(meta["test_accuracy"]) == pytest.approx(exported.parity.torch_accuracy, abs=1e-4)


def test_a_quickstart_checkpoint_exports_unchanged(tmp_path: Path) -> None:
    torch.manual_seed(7)
    quickstart = QuickstartNetwork().eval()
    ckpt = tmp_path / "model.pth"
    torch.save(quickstart.state_dict(), ckpt)
    report = export_onnx(ckpt, tmp_path / "model.onnx", use_real_data=False)
    assert report.parity.data.startswith("random inputs")
    images = np.random.default_rng(0).random((9, 1, 28, 28), dtype=np.float32)
    got, _ = onnx_outputs(tmp_path / "model.onnx", images)
    np.testing.assert_allclose(got, torch_outputs(quickstart, images)[0], atol=1e-5)


def test_a_perturbed_export_fails_verification_and_leaves_no_file(
    tmp_path: Path, trained_checkpoint, monkeypatch
) -> None:
    real_export = export_api.export_graph

    def export_then_perturb(model, path, opset, temperature=1.0):
        real_export(model, path, opset, temperature)
        proto = onnx.load(str(path))
        bias = next(t for t in proto.graph.initializer if t.name.endswith("4.bias"))
        values = onnx.numpy_helper.to_array(bias).copy()
        values[3] += 1e-3  # one logit off by a thousandth
        bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
        onnx.save(proto, str(path))

    monkeypatch.setattr(export_api, "export_graph", export_then_perturb)
    out = tmp_path / "out" / "model.onnx"
    with pytest.raises(ExportValidationError) as info:
        export_onnx(trained_checkpoint, out, use_real_data=False)
    mismatches = info.value.mismatches
    # Logits, probabilities and calibrated_probabilities, each at all five batch sizes,
    # listed together.
    assert len(mismatches) == 15, mismatches
    assert sum("logits max|diff| 0.001 > atol 1e-05" in m for m in mismatches) == 5
    assert sum(": probabilities max|diff|" in m for m in mismatches) == 5
    assert sum(": calibrated_probabilities max|diff|" in m for m in mismatches) == 5
    assert list(out.parent.iterdir()) == [], "no file, not even a temporary one, remains"


def test_the_signature_check_names_what_it_found(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 3, 224, 224])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3, 224, 224])
    graph = helper.make_graph([helper.make_node("Relu", ["pixels"], ["scores"])], "g", [x], [y])
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    problems = structure_problems(path)
    assert "inputs are ['pixels'], expected ['input']" in problems
    assert (
        "outputs are ['scores'], expected ['logits', 'probabilities', 'calibrated_probabilities']"
        in problems
    )


def test_int8_and_fp16_stay_within_their_accuracy_bounds(exported) -> None:
    by_precision = {v.precision: v for v in exported.variants}
    assert by_precision["int8"].accuracy_delta_points >= -0.3
    assert by_precision["fp16"].accuracy_delta_points >= -0.1
    assert by_precision["fp16"].argmax_agreement >= 0.999
    assert by_precision["int8"].size_bytes < exported.size_bytes / 3
    for variant in exported.variants:
        meta = ort.InferenceSession(variant.path).get_modelmeta().custom_metadata_map
        assert meta["precision"] == variant.precision
        assert json.loads(meta["class_names"]) == list(CLASS_NAMES)


runner = CliRunner()


def test_cli_a_corrupt_pth_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 garbage")
    result = runner.invoke(app, [str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: not a readable PyTorch checkpoint" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pth"]


def test_cli_output_equal_to_input_is_refused(trained_checkpoint) -> None:
    result = runner.invoke(app, [str(trained_checkpoint), "-o", str(trained_checkpoint)])
    assert result.exit_code == 2
    assert "is the input checkpoint" in result.output


def test_api_refuses_a_checkpoint_of_another_model(tmp_path: Path) -> None:
    ckpt = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(10, 784)}, ckpt)
    with pytest.raises(CheckpointError, match="not a state_dict of the FashionMNIST MLP"):
        export_onnx(ckpt, tmp_path / "other.onnx")
    assert not (tmp_path / "other.onnx").exists()


def _new_files(folder: Path, before: set[str]) -> set[str]:
    return {p.name for p in folder.iterdir()} - before


def test_a_variant_path_that_is_a_directory_leaves_nothing_and_exits_2(
    tmp_path: Path, trained_checkpoint
) -> None:
    (tmp_path / "m.int8.onnx").mkdir()
    before = {p.name for p in tmp_path.iterdir()}
    result = runner.invoke(app, [str(trained_checkpoint), "-o", str(tmp_path / "m.onnx"), "--int8"])
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"error: cannot write {tmp_path / 'm.int8.onnx'}: it is a directory"
    )
    assert _new_files(tmp_path, before) == set(), "no model.onnx, no temporary file"


def test_a_full_disk_while_writing_a_variant_leaves_nothing_and_exits_2(
    tmp_path: Path, trained_checkpoint, monkeypatch
) -> None:
    import errno

    def disk_full(fp32_path, out):
        out.write_bytes(b"half a model")
        raise OSError(errno.ENOSPC, "No space left on device", str(out))

    monkeypatch.setattr(export_api, "write_fp16", disk_full)
    result = runner.invoke(
        app, [str(trained_checkpoint), "-o", str(tmp_path / "m.onnx"), "--fp16", "--int8"]
    )
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot write ") and line.endswith("No space left on device")
    assert "Traceback" not in result.output
    assert _new_files(tmp_path, set()) == set()


def test_a_variant_that_loses_too_much_accuracy_leaves_nothing(
    tmp_path: Path, trained_checkpoint, monkeypatch
) -> None:
    real_write = export_api.write_int8

    def write_then_damage(fp32_path, out, method, calibration):  # really worse int8 models
        real_write(fp32_path, out, method, calibration)
        proto = onnx.load(str(out))
        weights = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
        values = onnx.numpy_helper.to_array(weights).copy()
        values[::3] = 0  # a third of the largest weight tensor gone
        weights.CopyFrom(onnx.numpy_helper.from_array(values, weights.name))
        onnx.save(proto, str(out))

    monkeypatch.setattr(export_api, "write_int8", write_then_damage)
    result = runner.invoke(app, [str(trained_checkpoint), "-o", str(tmp_path / "m.onnx"), "--int8"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ONNX export failed verification: int8: test accuracy drops")
    assert _new_files(tmp_path, set()) == set()


def test_without_labels_the_drop_is_not_checked_and_it_says_so(
    tmp_path: Path, trained_checkpoint
) -> None:
    with pytest.warns(UserWarning, match="int8: the accuracy drop was not checked"):
        report = export_onnx(
            trained_checkpoint, tmp_path / "m.onnx", use_real_data=False, precisions=("int8",)
        )
    (variant,) = report.variants
    assert variant.accuracy is None and variant.accuracy_delta_points is None
    assert variant.argmax_agreement > 0.9


# -- the int8 choice: the faster within the bound ------------------------------------


@pytest.mark.parametrize(
    ("drops", "speeds", "expected"),
    [
        ({"dynamic": 0.05, "static": 0.06}, {"dynamic": 4.47, "static": 4.33}, ("dynamic", True)),
        ({"dynamic": 0.05, "static": 0.06}, {"dynamic": 0.15, "static": 1.75}, ("static", True)),
        ({"dynamic": 0.40, "static": 0.10}, {"dynamic": 9.00, "static": 1.00}, ("static", True)),
        ({"dynamic": 0.90, "static": 0.50}, {"dynamic": 9.00, "static": 1.00}, ("static", False)),
        ({"dynamic": 0.0}, {"dynamic": 2.0}, ("dynamic", True)),
    ],
)
def test_choose_int8_keeps_the_faster_within_the_bound(
    drops: dict[str, float], speeds: dict[str, float], expected: tuple[str, bool]
) -> None:
    from fashion_onnx.export.variants import choose_int8

    assert choose_int8(drops, speeds, max_drop_points=0.3) == expected


@pytest.mark.parametrize("faster", ["dynamic", "static"])
def test_the_export_keeps_the_int8_method_measured_faster(
    tmp_path: Path, trained_checkpoint, monkeypatch, faster: str
) -> None:
    """The timings are given (the real ones are a hair apart for the MLP): whichever is
    faster is the file written, and the report says so."""
    real = export_api.throughputs

    def timed(paths, images):
        speed = real(paths, images[:64], rounds=1)
        return {**speed, "dynamic": 1.0, "static": 1.0, faster: 2.0}

    monkeypatch.setattr(export_api, "throughputs", timed)
    report = export_onnx(
        trained_checkpoint, tmp_path / "m.onnx", precisions=("int8",), max_drop_points=100
    )
    (int8,) = report.variants
    assert int8.method == faster
    assert int8.choice.startswith(f"{faster}: the faster within 100 points")
    ops = {n.op_type for n in onnx.load(int8.path).graph.node}
    # dynamic quantization leaves DynamicQuantizeLinear; static QDQ has none
    assert ("DynamicQuantizeLinear" in ops) == (faster == "dynamic"), ops


# -- what the command refuses, and what it prints ------------------------------------


def test_cli_does_not_replace_an_onnx_file_without_force_and_reports_for_people(
    tmp_path: Path, trained_checkpoint
) -> None:
    """Refused without --force (one line, the file untouched); with it, the human report:
    its title unpadded and whole however long the path (not wrapped at 80 columns when
    stdout is not a terminal), parity, agreement, calibration. One export for all of it."""
    import subprocess
    import sys

    folder = tmp_path / ("a-folder-with-a-long-name-" * 3)
    folder.mkdir()
    out = folder / "m.onnx"
    out.write_bytes(b"a verified model")
    command = [sys.executable, "-m", "fashion_onnx.export", str(trained_checkpoint), "-o", str(out)]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.splitlines() == [
        f"error: {out} already exists; pass --force to replace, or -o another path"
    ]
    assert out.read_bytes() == b"a verified model"
    forced = subprocess.run([*command, "--force"], capture_output=True, text=True, timeout=300)
    assert forced.returncode == 0, forced.stderr
    assert onnx.load(str(out)).graph.input[0].name == "input"
    assert forced.stdout.splitlines()[0] == f"Exported {out}"
    assert "max |Δ| logits" in forced.stdout and "argmax agreement" in forced.stdout
    assert "test ECE (15 bins)" in forced.stdout and "temperature" in forced.stdout


def test_cli_does_not_replace_a_variant_without_force(tmp_path: Path, trained_checkpoint) -> None:
    (tmp_path / "m.fp16.onnx").write_bytes(b"an older fp16 copy")
    result = runner.invoke(
        app, [str(trained_checkpoint), "-o", str(tmp_path / "m.onnx"), "--fp16", "--int8"]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'm.fp16.onnx'} already exists; pass --force to replace, "
        "or -o another path"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.fp16.onnx"]


def test_cli_an_onnx_model_as_input_is_named_as_such(tmp_path: Path) -> None:
    from fashion_onnx.infer.contract import default_model_path

    model = tmp_path / "model.onnx"
    model.write_bytes(default_model_path().read_bytes())
    for args in ([str(model)], [str(model), "-o", str(tmp_path / "x.onnx")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            f"error: {model}: this is an ONNX model, not a PyTorch checkpoint: it is already "
            "exported (fashion-infer --model takes it); fashion-export takes the .pth that "
            "fashion-train writes"
        ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_logits_are_held_to_atol_plus_a_share_of_their_size(test_set) -> None:
    """A float32 step grows with the value: a large logit may differ by a few steps (the
    embedded MLP's reach past 32), a small one only by atol."""
    from fashion_onnx.export.verify import compare_with_torch, cpu_session, run_session

    path = Path(export_api.__file__).resolve().parent.parent / "assets" / "fashion_mlp.onnx"
    images = (test_set[0][:256].astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    logits, probs = run_session(cpu_session(path), images, len(images))

    def failures(shift: np.ndarray) -> list[str]:
        found = compare_with_torch((logits + shift, probs), path, images, None, data="t", atol=1e-5)
        return [m for m in found[1] if ": logits" in m]

    big = np.abs(logits) >= 10  # bound there: 1e-5 + 1.3e-6 * 10 = 2.3e-5
    assert big.any() and (~big).any()
    assert failures(np.where(big, 2e-5, 0).astype(np.float32)) == []
    assert len(failures(np.where(big, 1e-4, 0).astype(np.float32))) == 5
    small = np.abs(logits) < 1
    assert len(failures(np.where(small, 2e-5, 0).astype(np.float32))) == 5


def test_cli_json_report_and_photo_model(tmp_path: Path, trained_checkpoint) -> None:
    """--json: the report on stdout; --photo: MODEL_photo.onnx beside the model, checked
    against the Python preparation (photos made from the test set, and its 28x28 images),
    and refused without --force once it exists. One export for both (an export is most of
    a minute here)."""
    out = tmp_path / "m.onnx"
    result = runner.invoke(app, [str(trained_checkpoint), "-o", str(out), "--photo", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["path"] == str(out) and out.is_file()
    assert report["parity"]["max_abs_logits"] <= 1e-5
    # the temperature, fitted on training images, and the test ECE before and after it
    calibration = report["calibration"]
    assert "training images" in calibration["fitted_on"] and calibration["temperature"] > 0
    assert calibration["ece_after"] < calibration["ece_before"]
    assert report["parity"]["max_abs_calibrated"] <= 1e-5
    plain = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = plain.get_modelmeta().custom_metadata_map
    assert float(meta["temperature"]) == calibration["temperature"]
    assert float(meta["ood_threshold"]) == calibration["ood_threshold"]
    check = report["photo"]
    assert check["path"] == str(tmp_path / "m_photo.onnx")
    assert check["top1_agreement"] >= 0.995 and check["prepared_max_diff"] <= 1
    assert check["squares"] == 10_000 and check["squares_max_abs_probabilities"] <= 1e-5
    session = ort.InferenceSession(check["path"], providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == [
        "prepared",
        "logits",
        "probabilities",
        "calibrated_probabilities",
    ]
    photo_meta = session.get_modelmeta().custom_metadata_map
    assert photo_meta["input_layout"] == "HWC" and "work_side" in photo_meta["preparation"]
    assert photo_meta["temperature"] == meta["temperature"]
    again = runner.invoke(app, [str(trained_checkpoint), "-o", str(out), "--photo"])
    assert again.exit_code == 2 and "m_photo.onnx already exist" in again.stderr


def test_a_photo_model_that_disagrees_leaves_nothing(
    tmp_path: Path, trained_checkpoint, monkeypatch
) -> None:
    """A preparation graph that differs from Python's fails the export: no file at all."""
    from fashion_onnx.export import photo_model

    real = photo_model.prepare
    monkeypatch.setattr(photo_model, "prepare", lambda picture: 255 - real(picture))
    out = tmp_path / "m.onnx"
    result = runner.invoke(app, [str(trained_checkpoint), "-o", str(out), "--photo"])
    assert result.exit_code == 2
    assert "photo model" in result.stderr and "grey levels" in result.stderr
    assert list(tmp_path.iterdir()) == []
