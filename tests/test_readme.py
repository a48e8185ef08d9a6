"""The README is the front door: its set-up commands and model-card figures must stay true."""

import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_it_opens_with_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_the_model_card_matches_the_embedded_files(name: str) -> None:
    data = (ROOT / "src" / "fashion_onnx" / "assets" / f"fashion_{name}.onnx").read_bytes()
    export = json.loads((ROOT / "models" / f"fashion_{name}.export.json").read_text())
    pth = (ROOT / "models" / f"fashion_{name}.pth").read_bytes()
    assert export["architecture"] == name
    assert hashlib.sha256(data).hexdigest() in README
    assert export["sha256"] == hashlib.sha256(data).hexdigest()
    assert f"{len(data):,} bytes" in README
    assert hashlib.sha256(pth).hexdigest() in README
    assert export["source_sha256"] == hashlib.sha256(pth).hexdigest()
    parity = export["parity"]
    assert parity["images"] == 10_000 and parity["argmax_agreement"] == 1.0
    assert f"{100 * parity['onnx_accuracy']:.2f}%" in README
    assert f"{parity['max_abs_logits']:.2e}" in README
    assert f"{parity['max_abs_probabilities']:.2e}" in README


def test_what_it_says_make_demo_prints_is_what_it_prints_now() -> None:
    """The paragraph comes from scripts/readme_demo.py, which classifies the samples as
    make demo does; a model or a preparation that changes its figures fails here."""
    import importlib.util

    script = ROOT / "scripts" / "readme_demo.py"
    spec = importlib.util.spec_from_file_location("readme_demo", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    section = README.split("<!-- demo:start -->\n")[1].split("<!-- demo:end -->")[0]
    assert section == module.paragraph()
