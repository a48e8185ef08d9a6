"""Write what the README says `make demo` prints, from what it prints.

    python scripts/readme_demo.py

``make demo`` runs ``fashion-infer samples/ --labels samples/labels.csv`` (the embedded
MLP). This runs the same classification, with the top 3, and puts the paragraph between
the README's ``<!-- demo:start -->`` and ``<!-- demo:end -->``; tests/test_readme.py checks
that the README holds what it would write now.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import update_readme  # noqa: E402

from fashion_onnx.infer import Classifier  # noqa: E402

SAMPLES = ROOT / "samples"


def paragraph() -> str:
    """The README's words on `make demo`'s output, with its figures."""
    with (SAMPLES / "labels.csv").open(newline="") as handle:
        truth = {row["file"]: row["class"] for row in csv.DictReader(handle)}
    names = sorted(truth)
    result = Classifier().predict([str(SAMPLES / n) for n in names])
    classes = Classifier().class_names
    misses = []
    for name, order, probs in zip(names, *result.top_k(3), strict=True):
        guess, *rest = (f"{classes[i]} {100 * p:.1f}%" for i, p in zip(order, probs, strict=True))
        if classes[order[0]] != truth[name]:
            misses.append(
                f"`{name}` ({truth[name]}) is taken for {guess}, then {' and '.join(rest)}"
            )
    right = len(names) - len(misses)
    text = (
        "`make demo` prints one line per sample, marks the wrong ones, and says how many were "
        f"right: `correct: {right}/{len(names)}`."
    )
    if misses:
        text += " The misses: " + "; ".join(misses) + "."
    return text + " (`python scripts/readme_demo.py` writes this paragraph.)\n"


if __name__ == "__main__":
    update_readme(ROOT / "README.md", paragraph(), marker="demo")
    print(paragraph(), end="")
