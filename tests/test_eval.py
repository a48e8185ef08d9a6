"""fashion-eval, run as users run it: its table, its JSON and its PNGs, on the test set, a
folder with labels.csv and arrays; its figures match the model card's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"


def fashion_eval(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fashion_onnx.eval", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_json_and_plots_on_the_test_set_match_the_model_card(name: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    ood = ["--ood"] if name == "mlp" else ["--no-ood"]  # the OOD sets once (test_ood has more)
    done = fashion_eval("--model", name, "--json", "--plots", str(tmp_path), "--no-speed", *ood)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    export = json.loads((ROOT / "models" / f"fashion_{name}.export.json").read_text())
    assert report["images"] == 10_000
    assert report["top1"] == export["parity"]["onnx_accuracy"]  # the card's figure
    assert report["ece_calibrated"] == pytest.approx(export["calibration"]["ece_after"], abs=1e-6)
    assert report["ece_probabilities"] == pytest.approx(
        export["calibration"]["ece_before"], abs=1e-6
    )
    assert report["top2"] > report["top1"]
    assert np.array(report["confusion"]).sum() == 10_000
    for png in ("confusion.png", "reliability.png"):
        assert (tmp_path / png).read_bytes().startswith(PNG)
    if name == "mlp":
        ood_report = report["ood"]
        assert ood_report["chosen"] == "energy" and ood_report["kept"] == pytest.approx(
            0.95, abs=0.001
        )
        sets = [s["name"] for s in ood_report["sets"]["energy"]]
        assert sets == ["digits", "patches", "noise", "inverted"]


def test_the_table_on_a_folder_with_labels_csv() -> None:
    done = fashion_eval("samples", "--no-speed", "--no-ood")
    assert done.returncode == 0, done.stderr
    assert "top-1 / top-2 accuracy" in done.stdout and "85.00%" in done.stdout  # 17/20
    assert "ECE, 15 bins" in done.stdout and "Ankle boot" in done.stdout


def test_arrays_with_labels_and_the_speed_figures(tmp_path: Path, test_set) -> None:
    images, labels = test_set
    np.savez(tmp_path / "some.npz", images=images[:200], labels=labels[:200])
    done = fashion_eval(str(tmp_path / "some.npz"), "--json", "--no-ood")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["images"] == 200
    (cpu,) = [s for s in report["speed"] if s["device"] == "cpu"]
    assert 0 < cpu["p50_ms"] <= cpu["p99_ms"] and cpu["images_per_s"] > 0


def test_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    done = fashion_eval(str(tmp_path), "--no-speed", "--no-ood")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "labels.csv" in done.stderr
    np.save(tmp_path / "x.npy", np.zeros((3, 28, 28), np.uint8))
    done = fashion_eval(str(tmp_path / "x.npy"))
    assert done.returncode == 2 and "--labels" in done.stderr


def test_the_version_and_the_exit_statuses_in_help() -> None:
    assert fashion_eval("--version").stdout.startswith("fashion-onnx ")
    assert "Exit status: 0 evaluated; 2 usage" in " ".join(fashion_eval("--help").stdout.split())


def test_the_table_and_help_print_brackets_as_written(monkeypatch) -> None:
    """rich reads "[test]" as markup unless told not to: the reason a set is skipped
    keeps its install hint, and the optional DATA argument is shown as [DATA]."""
    from typer.testing import CliRunner

    from fashion_onnx.errors import DataNotFoundError
    from fashion_onnx.eval import cli, ood_sets

    def no_sets(name: str, images: np.ndarray) -> np.ndarray:
        raise DataNotFoundError(f"the {name} set needs scikit-learn (the [test] extra)")

    monkeypatch.setattr(ood_sets, "build", no_sets)
    monkeypatch.setenv("COLUMNS", "200")  # one line per row
    done = CliRunner().invoke(cli.app, ["samples", "--no-speed", "--ood"])
    assert done.exit_code == 0, done.output
    assert "skipped: the digits set needs scikit-learn (the [test] extra)" in " ".join(
        done.stdout.split()
    )
    usage = fashion_eval("--help").stdout
    assert "[DATA]" in usage and "[[DATA]]" not in usage


def test_fashion_eval_imports_neither_torch_nor_onnx_nor_matplotlib() -> None:
    code = (
        "import sys, fashion_onnx.eval.cli, fashion_onnx.eval.run, fashion_onnx.eval.ood_sets; "
        "print([m for m in ('torch', 'onnx', 'matplotlib') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_the_readme_trust_section_is_the_generated_one(name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- trust:start -->")[1].split("<!-- trust:end -->")[0]
    report = json.loads((ROOT / "models" / "trust" / f"{name}.json").read_text())
    export = json.loads((ROOT / "models" / f"fashion_{name}.export.json").read_text())
    assert report["ece_calibrated"] == pytest.approx(export["calibration"]["ece_after"], abs=1e-6)
    assert f"| {report['ece_calibrated']:.4f} (" in section
    for row in report["ood"]["sets"]["energy"]:
        assert f"| `{name}` | {row['name']} | {row['auroc']:.4f} (" in section
    for png in ("confusion", "reliability"):
        assert (ROOT / "models" / "trust" / f"{name}-{png}.png").read_bytes().startswith(PNG)
