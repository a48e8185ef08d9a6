"""fashion-infer's outputs stay what the version before the chunk engine (#20) wrote for
the same inputs, in every format, with one worker and with the default: byte for byte on
the CPU that wrote them; on another CPU, exact in structure and labels, with numbers
allowed to differ by the rounding of their last printed digit (tests/golden_text.py: an
AMD EPYC prints 0.800812 where the Intel Xeon that wrote the files printed 0.800813).

The expected files in tests/golden/ were written by that version (commit 9881237) with
``PYTHONPATH=. python tests/test_outputs_unchanged.py``, and rewritten since, on
purpose: when the embedded models were re-exported with calibrated_probabilities
(the confidences became the calibrated ones, every top-1 unchanged; the code change alone
kept the old files' outputs byte for byte), and when both models were retrained with
outlier exposure and a held-out slice (new weights, new rows); and the rows of the six
JPEG photos with margins, when #30 replaced the photo preparation (every other row kept).
The inputs are made here from the real test set, bad files mixed in, and named on the
command line so that their order is fixed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.golden_text import differences

GOLDEN = Path(__file__).resolve().parent / "golden"
RUNS = {  # golden file -> the options after the inputs
    "rows.csv": ["--format", "csv", "--top-k", "3"],
    "rows.json": ["--format", "json", "--top-k", "2"],
    "rows.jsonl": ["--format", "jsonl"],
    "rows.table": ["--top-k", "2"],
    "rows-labelled.table": ["--labels", "in/labels.csv"],
    "rows-cnn.csv": ["--format", "csv", "--model", "cnn"],
}


def make_inputs(root: Path, images: np.ndarray, labels: np.ndarray) -> list[str]:
    """300 real test images (PNG, a few JPEG photos with margins), 4 bad files among them,
    under root/in/; returns the arguments naming them, relative to root, in a fixed order."""
    from fashion_onnx.photosets import with_margins

    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat")
    names += ("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    folder = root / "in"
    folder.mkdir()
    rng = np.random.default_rng(20)
    args, rows = [], ["file,class"]
    for i in range(300):
        if i % 50 == 7:
            path = folder / f"{i:03d}.jpg"
            path.write_bytes(with_margins(images[i], rng).data)
        else:
            path = folder / f"{i:03d}.png"
            Image.fromarray(images[i], mode="L").save(path)
        args.append(f"in/{path.name}")
        rows.append(f"{path.name},{names[labels[i]]}")
        if i % 75 == 3:
            bad = folder / f"{i:03d}-bad.png"
            bad.write_bytes(b"" if i < 150 else b"\x89PNG\r\n\x1a\n-truncated")
            args.append(f"in/{bad.name}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return args


def run(root: Path, args: list[str], options: list[str], workers: int | None) -> str:
    more = [] if workers is None else ["--workers", str(workers)]
    done = subprocess.run(
        [sys.executable, "-m", "fashion_onnx.infer", *args, *options, *more, "--device", "cpu"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert done.returncode == 1, done.stderr  # the bad files
    assert done.stderr.count(": empty file (0 bytes)") == 2, done.stderr
    return done.stdout


@pytest.mark.parametrize("golden", sorted(RUNS))
@pytest.mark.parametrize("workers", [1, None], ids=["one-worker", "default-workers"])
def test_outputs_are_those_of_the_previous_version(
    golden: str, workers: int | None, test_set, tmp_path: Path
) -> None:
    args = make_inputs(tmp_path, *test_set)
    output = run(tmp_path, args, RUNS[golden], workers)
    assert differences(output, (GOLDEN / golden).read_text()) == []


if __name__ == "__main__":  # writes the golden files with the installed version
    import tempfile

    from fashion_onnx.fashion_mnist import load_split

    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp), *load_split("test"))
        GOLDEN.mkdir(exist_ok=True)
        for name, options in RUNS.items():
            (GOLDEN / name).write_text(run(Path(tmp), inputs, options, None))
            assert run(Path(tmp), inputs, options, 1) == (GOLDEN / name).read_text()
