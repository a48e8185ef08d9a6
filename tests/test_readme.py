"""The README is the front door: its set-up commands and model-card figures must stay true."""

import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
ASSET = ROOT / "src" / "fashion_onnx" / "assets" / "fashion_mlp.onnx"


def test_it_opens_with_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_model_card_matches_the_embedded_file() -> None:
    data = ASSET.read_bytes()
    export = json.loads((ROOT / "models" / "fashion_mlp.export.json").read_text())
    pth = (ROOT / "models" / "fashion_mlp.pth").read_bytes()
    assert hashlib.sha256(data).hexdigest() in README
    assert export["sha256"] == hashlib.sha256(data).hexdigest()
    assert f"{len(data):,} bytes" in README
    assert hashlib.sha256(pth).hexdigest() in README
    assert export["source_sha256"] == hashlib.sha256(pth).hexdigest()
    parity = export["parity"]
    assert f"{100 * parity['onnx_accuracy']:.2f}%" in README
    assert f"{parity['max_abs_logits']:.2e}" in README
    assert f"{parity['max_abs_probabilities']:.2e}" in README
