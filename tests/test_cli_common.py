"""What the three commands share, run as a user runs them: real subprocesses.

Usage errors are one ``error:`` line with exit status 2, every command has ``--version``,
and ``fashion-train`` / ``fashion-export`` without the [train] extra say what to install.
Torch-free: these run in the base install too.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fashion_onnx

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = ROOT / "models" / "fashion_mlp.pth"
SAMPLES = ROOT / "samples"
COMMANDS = {
    "fashion-train": "fashion_onnx.train.cli",
    "fashion-export": "fashion_onnx.export.cli",
    "fashion-infer": "fashion_onnx.infer.cli",
}

# Runs one command's console entry point (main) under its own name, with some top-level
# modules made unimportable, as if their extra were not installed.
RUNNER = """
import sys
blocked = set(sys.argv[1].split(",")) - {""}
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
module, sys.argv = sys.argv[2], sys.argv[3:]
import importlib
importlib.import_module(module).main()
"""


def run_command(
    command: str, *args: str, blocked: tuple[str, ...] = (), cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, ",".join(blocked), COMMANDS[command], command, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The only line on stderr, which must be an ``error:`` line; exit status 2."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("command", "args", "blocked", "missing"),
    [
        ("fashion-train", ["--dry-run"], ("torch",), "torch"),
        pytest.param(
            "fashion-train",
            ["--summary"],
            ("torchinfo",),
            "torchinfo",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("torch") is None,
                reason="without torch, torch is what is missing first",
            ),
        ),
        ("fashion-export", [str(CHECKPOINT), "-o", "{tmp}/x.onnx"], ("onnx",), "onnx"),
        ("fashion-export", [str(CHECKPOINT), "-o", "{tmp}/x.onnx"], ("torch",), "torch"),
    ],
)
def test_without_the_train_extra_one_line_names_the_install(
    tmp_path: Path, command: str, args: list[str], blocked: tuple[str, ...], missing: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = run_command(command, *args, blocked=blocked, cwd=tmp_path)
    line = one_error_line(result)
    assert f"'{missing}'" in line
    assert "pip install '.[train,cpu]'" in line  # from a clone
    assert "pip install 'fashion-onnx[train,cpu]'" in line  # the published package
    assert list(tmp_path.iterdir()) == [], "nothing written"


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        ("fashion-train", ["--epochs", "0"], "Invalid value for '--epochs'"),
        ("fashion-train", ["--arch", "vit"], "'vit' is not one of mlp, cnn"),
        # click's suggestion of close names survives (its wording varies with versions)
        ("fashion-train", ["--epoch", "3"], r"No such option: --epoch \W*\w[^(]*--epochs\b"),
        ("fashion-train", ["--dry-runn"], r"No such option: --dry-runn \W*\w[^(]*--dry-run\b"),
        ("fashion-export", [], "Missing argument 'CHECKPOINT'"),
        ("fashion-export", [str(CHECKPOINT), "--opset", "x"], "Invalid value for '--opset'"),
        ("fashion-infer", [str(SAMPLES), "--top-k", "0"], "Invalid value for '--top-k'"),
        ("fashion-infer", [str(SAMPLES), "--device", "tpu"], "'tpu' is not one of auto"),
        ("fashion-infer", [str(SAMPLES), "--bogus"], "No such option: --bogus"),
        ("fashion-infer", [], "Missing argument 'PATH'"),
    ],
)
def test_usage_errors_are_one_error_line_with_status_2(
    command: str, args: list[str], expected: str
) -> None:
    result = run_command(command, *args)
    line = one_error_line(result)
    assert re.search(expected, line) or expected in line, line
    assert result.stdout == ""
    assert f"{command} --help" in line  # where to look next


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_version(command: str) -> None:
    result = run_command(command, "--version")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"fashion-onnx {fashion_onnx.__version__}\n"


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("fashion-train", "Usage: fashion-train [OPTIONS]"),
        ("fashion-export", "Usage: fashion-export [OPTIONS] CHECKPOINT"),
        ("fashion-infer", "Usage: fashion-infer [OPTIONS] PATH..."),
    ],
)
def test_help_has_plain_metavars_and_the_exit_statuses(command: str, usage: str) -> None:
    result = run_command(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == usage
    assert not re.search(r"\{\w+\}", result.stdout), "no {checkpoint} / {PATH} metavars"
    help_text = " ".join(result.stdout.split())
    assert "Exit status: 0" in help_text
    assert "2 usage or configuration error" in help_text
