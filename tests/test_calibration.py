"""calibrated_probabilities: a temperature fitted on training images only, folded into the
exported graph beside the unchanged logits and probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from fashion_onnx.constants import EXPORTED_OUTPUTS, META_TEMPERATURE
from fashion_onnx.eval.measures import expected_calibration_error, softmax
from fashion_onnx.fashion_mnist import raw_dir

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "src" / "fashion_onnx" / "assets"


def _write_idx(path: Path, array: np.ndarray) -> None:
    magic = 2051 if array.ndim == 3 else 2049
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_the_temperature_is_fitted_on_training_images_only(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("torch", reason="needs the [train] extra")
    from fashion_onnx.export import calibrate
    from fashion_onnx.fashion_mnist import held_out, load_split
    from fashion_onnx.models import load_model

    model = load_model(ROOT / "models" / "fashion_mlp.pth")
    read: list[str] = []

    def only_train(split, data_dir=None, debian_dir=None):
        read.append(split)
        if split != "train":
            raise AssertionError(f"the calibration read the {split} split")
        return load_split(split, data_dir, debian_dir)

    monkeypatch.setattr(calibrate, "load_split", only_train)
    real = calibrate.fit_calibration(model, tmp_path / "none", None, None)
    assert read == ["train"] and 0.5 < real.temperature < 2
    # exactly the slice fashion-train held out of the embedded model's training
    sliced = calibrate.training_slice(None)
    assert sliced is not None
    train_images, train_labels = load_split("train")
    np.testing.assert_array_equal(sliced[1], train_labels[held_out()])
    np.testing.assert_array_equal(sliced[0][:, 0], train_images[held_out()] / np.float32(255))

    # The same training images with shuffled labels: a model that knew these labels would
    # need a flat softmax (a large T). The test files are left as they are: T moves only
    # because the *training* labels changed.
    images, labels = load_split("train")
    raw = raw_dir(tmp_path)
    raw.mkdir(parents=True)
    _write_idx(raw / "train-images-idx3-ubyte", images)
    _write_idx(raw / "train-labels-idx1-ubyte", np.random.default_rng(0).permutation(labels))
    shuffled = calibrate.fit_calibration(model, tmp_path, None, None)
    assert shuffled.temperature > 5 * real.temperature
    assert "training images" in shuffled.fitted_on and "never test" in shuffled.fitted_on
    assert "holds out" in shuffled.fitted_on


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_the_embedded_files_carry_calibrated_probabilities(name: str, test_set) -> None:
    path = ASSETS / f"fashion_{name}.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(EXPORTED_OUTPUTS)
    meta = session.get_modelmeta().custom_metadata_map
    temperature = float(meta[META_TEMPERATURE])
    images, labels = test_set
    x = (images.astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    logits, probs, calibrated = session.run(None, {"input": x})
    # probabilities is still the plain softmax; calibrated is softmax(logits / T)
    assert np.abs(probs - softmax(logits)).max() < 1e-5
    assert np.abs(calibrated - softmax(logits, temperature)).max() < 1e-5
    assert (calibrated.argmax(1) == probs.argmax(1)).all()  # top-1 unchanged
    record = json.loads(meta["calibration"])
    before = expected_calibration_error(probs, labels)
    after = expected_calibration_error(calibrated, labels)
    assert after < before / 2
    assert record["test_ece_calibrated_probabilities"] == pytest.approx(after, abs=1e-4)
    export = json.loads((ROOT / "models" / f"fashion_{name}.export.json").read_text())
    assert export["calibration"]["temperature"] == pytest.approx(temperature)
