import pytest

pytest.importorskip("torch", reason="needs the [train] extra")

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from fashion_onnx.train.cli import app
from tests.quickstart import NeuralNetwork as QuickstartNetwork

runner = CliRunner()


def test_summary_prints_the_layer_table() -> None:
    result = runner.invoke(app, ["--summary"])
    assert result.exit_code == 0, result.output
    assert "Linear" in result.output
    assert "[1, 512]" in result.output
    assert "669,706" in result.output


def test_dry_run_writes_a_quickstart_loadable_pth_metrics_and_plots(
    tmp_path: Path, fashion_data
) -> None:
    out = tmp_path / "model.pth"
    plots = tmp_path / "plots"
    result = runner.invoke(app, ["--dry-run", "-o", str(out), "--plots", str(plots)])
    assert result.exit_code == 0, result.output
    assert "Test Error: Accuracy:" in result.output
    # The quickstart's own loading code takes it as-is (a plain state_dict).
    model = QuickstartNetwork()
    model.load_state_dict(torch.load(out))
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["max_steps"] == 2
    assert record["data_source"] in ("data-dir", "debian")
    assert {"torch", "fashion_onnx"} <= record["versions"].keys()
    assert 0 <= record["test_accuracy"] <= 1
    pngs = sorted(p.name for p in plots.iterdir())
    assert pngs == ["class_accuracy.png", "test_samples.png", "training_curves.png"]
    for png in plots.iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_outlier_exposure_and_the_holdout_are_recorded_and_can_be_turned_off(
    tmp_path: Path, fashion_data
) -> None:
    out = tmp_path / "model.pth"
    result = runner.invoke(app, ["--dry-run", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "5,000 of them held out for calibration" in " ".join(result.output.split())
    config = json.loads(out.with_suffix(".json").read_text())["config"]
    assert config["outliers"] == 0.25 and config["holdout"] is True
    result = runner.invoke(
        app, ["--dry-run", "-o", str(out), "--force", "--outliers", "0", "--no-holdout"]
    )
    assert result.exit_code == 0, result.output
    assert "held out" not in result.output
    config = json.loads(out.with_suffix(".json").read_text())["config"]
    assert config["outliers"] == 0 and config["holdout"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outliers", "-1"], "Invalid value for '--outliers'"),
        (["--device", "tpu"], "device must be auto, cpu or cuda, got 'tpu'"),
        (["--epochs", "0"], "Invalid value for '--epochs'"),
    ],
)
def test_bad_options_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_missing_data_exits_2_naming_the_ways_to_get_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FASHION_ONNX_DEBIAN_DIR", str(tmp_path / "no-debian"))
    result = runner.invoke(
        app, ["--data-dir", str(tmp_path / "empty"), "--no-download", "-o", str(tmp_path / "m.pth")]
    )
    assert result.exit_code == 2
    assert "apt-get install dataset-fashion-mnist" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "m.pth").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_on_a_cpu_machine_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--device", "cuda", "--dry-run", "-o", str(tmp_path / "m.pth")])
    assert result.exit_code == 2
    assert "error: CUDA is not usable by torch here: " in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_auto_with_a_gpu_torch_cannot_use_warns_once_and_trains_on_the_cpu(
    tmp_path: Path, monkeypatch, fashion_data
) -> None:
    from fashion_onnx.train import loop

    monkeypatch.setattr(loop, "gpu_present", lambda: True)
    result = runner.invoke(app, ["--dry-run", "-o", str(tmp_path / "m.pth")])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: a GPU is present but torch cannot use CUDA, so training on the CPU: "
        f"{loop.torch_cuda_problem()}"
    ]
    assert "on cpu" in result.output


def train_process(*args: str, cwd: Path, env: dict[str, str] | None = None):
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "fashion_onnx.train", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.mark.parametrize("existing", ["model.pth", "model.json"])
def test_dry_run_does_not_replace_a_model_without_force(tmp_path: Path, existing: str) -> None:
    """A smoke test must not destroy a trained model: the defaults are ./model.pth and
    ./model.json, and either one existing stops the command before anything is done."""
    (tmp_path / existing).write_bytes(b"a model from a 20-minute run")
    result = train_process("--dry-run", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: {existing} already exists; pass --force to replace, or -o another path"
    ]
    assert [p.name for p in tmp_path.iterdir()] == [existing]
    assert (tmp_path / existing).read_bytes() == b"a model from a 20-minute run"


def test_force_replaces_an_existing_model(tmp_path: Path, fashion_data) -> None:
    out = tmp_path / "m.pth"
    out.write_bytes(b"old")
    out.with_suffix(".json").write_text("{}")
    result = runner.invoke(app, ["--dry-run", "-o", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:2] == b"PK"  # torch.save's zip
    assert json.loads(out.with_suffix(".json").read_text())["config"]["max_steps"] == 2


def test_a_data_dir_whose_parent_is_missing_is_refused(tmp_path: Path) -> None:
    result = train_process(
        "--dry-run", "--data-dir", str(tmp_path / "typo" / "data"), "--no-download", cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: --data-dir {tmp_path / 'typo' / 'data'}: neither it nor its parent "
        f"{tmp_path / 'typo'} exists; create it first, or check the path"
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_new_data_dir_is_announced_and_left_empty_on_failure(tmp_path: Path) -> None:
    """No data anywhere (Debian's copy pointed elsewhere, no download): the new data dir is
    announced, the error says no internet is involved, and no empty raw/ is left behind."""
    data = tmp_path / "data"
    result = train_process(
        "--dry-run",
        "--data-dir",
        str(data),
        "--no-download",
        cwd=tmp_path,
        env={"FASHION_ONNX_DEBIAN_DIR": str(tmp_path / "no-debian")},
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"--data-dir {data} does not exist: creating it for FashionMNIST"
    assert lines[1].startswith("error: FashionMNIST not found")
    assert "--no-download" in result.stderr
    assert "internet" not in result.stderr and "download failed" not in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "no data dir, no raw/, no model"


def test_help_says_a_shared_default_once() -> None:
    result = runner.invoke(app, ["--help"])
    text = " ".join(result.output.split())
    assert "[default: 20, both recipes]" in text  # --epochs
    assert "[default: 512 for the MLP, 128 for the CNN]" in text  # --batch-size
    assert "20 for the MLP, 20 for the CNN" not in text


def test_summary_names_the_mult_adds_unit() -> None:
    result = runner.invoke(app, ["--summary"])
    assert result.exit_code == 0, result.output
    assert "Total mult-adds (M): 0.67" in result.output
    assert "Units." not in result.output


def test_paths_are_printed_whole_however_long(tmp_path: Path) -> None:
    """Not wrapped at 80 columns where stderr is not a terminal: a log keeps paths whole."""
    folder = tmp_path / ("a-folder-with-a-long-name-" * 3)
    folder.mkdir()
    out, plots = folder / "m.pth", folder / "plots"
    result = train_process("--dry-run", "-o", str(out), "--plots", str(plots), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert any(line.endswith(f"Saved {out} and {out.with_suffix('.json')}") for line in lines)
    assert any(line.startswith(f"Plot: {plots}/") for line in lines)
