"""The model card's comparison: each embedded model's accuracy on the real test set (from its
export report) and on samples/ (mixed formats, a few product-photo style), and its size."""

from __future__ import annotations

import json
import re

from bench.common import BIN, ROOT, run_process

MODELS = ("mlp", "cnn")
CORRECT = re.compile(r"correct: (\d+)/(\d+)")


def run() -> dict:
    rows = {}
    for name in MODELS:
        export = json.loads((ROOT / "models" / f"fashion_{name}.export.json").read_text())
        result = run_process(
            [
                str(BIN / "fashion-infer"),
                str(ROOT / "samples"),
                "--labels",
                str(ROOT / "samples" / "labels.csv"),
                "--model",
                name,
                "--no-progress",
            ]
        )
        right, judged = map(int, CORRECT.search(result.stderr).groups())
        rows[name] = {
            "test_accuracy": export["parity"]["onnx_accuracy"],
            "samples_right": right,
            "samples_judged": judged,
            "size_bytes": export["size_bytes"],
        }
    return rows
