"""The inference path never imports torch, onnx or matplotlib: checked in a fresh interpreter."""

import json
import subprocess
import sys

HEAVY = ["torch", "torchvision", "onnx", "onnxscript", "matplotlib", "torchinfo", "ray"]


def imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_infer_module_and_its_cli_stay_light() -> None:
    modules = imported_after(
        "import fashion_onnx.infer, fashion_onnx.infer.cli, fashion_onnx.infer.files\n"
        "from fashion_onnx.infer import Classifier\n"
        "Classifier().predict(__import__('numpy').zeros((2, 28, 28), 'uint8'))"
    )
    assert "onnxruntime" in modules and "PIL" in modules  # the probe really ran inference
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


def test_the_fashion_infer_entry_point_stays_light(tmp_path) -> None:
    from PIL import Image

    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    modules = imported_after(
        # app(), not main(): main() ends the process at once, before the probe can look
        "import sys\nfrom fashion_onnx.infer.cli import app\n"
        f"sys.argv = ['fashion-infer', {str(tmp_path / 'x.png')!r}]\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert e.code == 0, e.code"
    )
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


def test_the_other_clis_help_does_not_load_torch() -> None:
    for cli in ("fashion_onnx.train.cli", "fashion_onnx.export.cli"):
        assert "torch" not in imported_after(f"import {cli}")
