"""Abstaining: the OOD sets are built offline, and the abstain threshold works in the CLI
(CSV and JSON, counted in the summary) and in the Python API."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_onnx.eval import ood_sets
from fashion_onnx.eval.measures import auroc
from fashion_onnx.infer import Classifier
from fashion_onnx.infer.abstain import energy

pytest.importorskip("sklearn", reason="needs the [test] extra")
pytest.importorskip("skimage", reason="needs the [test] extra")


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an OOD set tried to reach the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_ood_sets_are_built_offline(no_network, test_set) -> None:
    built = {name: ood_sets.build(name, test_set[0]) for name in ood_sets.OOD_SETS}
    assert len(built["digits"]) == 1797 and len(built["patches"]) == 14 * 150
    assert len(built["noise"]) == 2000 and len(built["inverted"]) == 2000
    for images in built.values():
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
        assert images.std() > 10  # real content, not blank frames
    # digits are light on dark, as FashionMNIST: most pixels are dark
    assert built["digits"].mean() < 100 and built["digits"].max() == 255
    np.testing.assert_array_equal(built["patches"], ood_sets.patches())  # seeded


def test_the_cnn_energy_tells_digits_from_garments(test_set) -> None:
    clf = Classifier("cnn", device="cpu", invert="never")
    inside = clf.predict(test_set[0][:2000]).ood_scores
    digits = clf.predict(ood_sets.digits()).ood_scores
    assert auroc(inside, digits) > 0.98


# issue 24's targets on the embedded models, against the real test set: (AUROC, share
# marked unknown at the default threshold), for digits and photo patches alike
TARGETS = {"mlp": (0.97, 0.85), "cnn": (0.99, 0.95)}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_embedded_models_tell_digits_and_photos_from_garments(name: str, test_set) -> None:
    clf = Classifier(name, device="cpu", invert="never")
    inside = clf.predict(test_set[0])
    assert inside.unknown(ood=True).mean() == pytest.approx(0.05, abs=0.001)
    least_auroc, least_flagged = TARGETS[name]
    for images in (ood_sets.digits(), ood_sets.patches()):
        outside = clf.predict(images)
        assert auroc(inside.ood_scores, outside.ood_scores) >= least_auroc
        assert outside.unknown(ood=True).mean() >= least_flagged


def test_predictions_abstain_in_the_python_api(test_set) -> None:
    clf = Classifier("mlp", device="cpu", invert="never")
    garments = clf.predict(test_set[0])
    np.testing.assert_allclose(garments.ood_scores, energy(garments.logits))
    # the model's default threshold keeps 95% of the real test set
    assert garments.unknown(ood=True).mean() == pytest.approx(0.05, abs=0.001)
    noise = clf.predict(ood_sets.noise(200))
    assert noise.unknown(ood=True).all()
    assert (noise.labels_or_unknown(ood=True) == -1).all()
    low = garments.confidences < 0.7
    assert (garments.unknown(0.7) == low).all() and 0 < low.sum() < len(low)
    labels = garments.labels_or_unknown(0.7)
    assert (labels[low] == -1).all() and (labels[~low] == garments.labels[~low]).all()


def _run(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fashion_onnx.infer", "in", *options, "--device", "cpu"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ},
    )


@pytest.fixture
def mixed(tmp_path: Path, test_set) -> Path:
    """10 garments and 10 noise images as PNGs."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(10):
        Image.fromarray(test_set[0][i]).save(folder / f"g{i}.png")
    for i, image in enumerate(ood_sets.noise(10)):
        Image.fromarray(image).save(folder / f"n{i}.png")
    return tmp_path


def test_the_cli_abstains_in_csv_and_counts_it(mixed: Path) -> None:
    done = _run(mixed, "--format", "csv", "--abstain", "--ood-score", "--invert", "never")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(rows[0]) == ["path", "label", "class", "confidence", "guess", "ood_score"]
    unknown = {r["path"] for r in rows if r["label"] == "-1"}
    assert all(r["class"] == "unknown" for r in rows if r["label"] == "-1")
    assert {f"in/n{i}.png" for i in range(10)} <= unknown
    assert f"; unknown: {len(unknown)}" in done.stderr
    plain = _run(mixed, "--format", "csv", "--invert", "never")
    assert "ood_score" not in plain.stdout and "-1," not in plain.stdout
    assert "unknown" not in plain.stderr


@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_an_abstaining_row_keeps_the_models_guess_beside_its_top_k(mixed: Path, fmt: str) -> None:
    """With --top-k 3, the guess (the most probable class) is not among class_2, class_3:
    the guess column says what the model thought, as JSON's top_k does."""
    args = ("--min-confidence", "0.999", "--top-k", "3", "--invert", "never")
    done = _run(mixed, "--format", fmt, *args)
    as_json = _run(mixed, "--format", "json", *args)
    assert done.returncode == 0 and as_json.returncode == 0, done.stderr
    guesses = {r["path"]: r["top_k"][0]["class"] for r in json.loads(as_json.stdout)}
    unknown = [r["path"] for r in json.loads(as_json.stdout) if r["class"] == "unknown"]
    assert unknown
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(done.stdout)))
        assert list(rows[0])[:5] == ["path", "label", "class", "confidence", "guess"]
        assert {r["path"]: r["guess"] for r in rows} == guesses
    else:
        lines = done.stdout.splitlines()
        assert lines[0].split()[:3] == ["class", "conf", "guess"]
        for line in lines[1:]:
            path = line.split()[-1]
            assert line.startswith("unknown" if path in unknown else guesses[path])
            assert f"% {guesses[path]} " in " ".join(line.split()) + " "


def test_the_cli_min_confidence_in_json(mixed: Path) -> None:
    done = _run(mixed, "--format", "json", "--min-confidence", "0.9")
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    for r in records:
        below = r["confidence"] < 0.9
        assert (r["label"] == -1) == below and (r["class"] == "unknown") == below
        assert r["top_k"][0]["probability"] == r["confidence"]  # the top-1 is still given
    count = sum(r["label"] == -1 for r in records)
    assert 0 < count < len(records) and f"; unknown: {count}" in done.stderr


def test_the_cli_refuses_a_bad_threshold_in_one_line(mixed: Path) -> None:
    done = _run(mixed, "--min-confidence", "1.5")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "--min-confidence" in done.stderr
