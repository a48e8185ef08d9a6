"""Write the README's "How far to trust it" section from fashion-eval's own figures.

    python scripts/trust_report.py          # both embedded models, on the real test set

It runs ``fashion_onnx.eval.run.evaluate`` on the embedded MLP and CNN, writes their
confusion and reliability PNGs to models/trust/ and the reports to models/trust/*.json, and
puts the tables between the README's ``<!-- trust:start -->`` and ``<!-- trust:end -->``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_model  # noqa: E402
from bench.report import update_readme  # noqa: E402

from fashion_onnx.eval.data import test_set  # noqa: E402
from fashion_onnx.eval.plots import write_plots  # noqa: E402
from fashion_onnx.eval.run import EvalReport, evaluate  # noqa: E402

OUT = ROOT / "models" / "trust"
TARGETS = {  # issue 24: AUROC and share marked unknown, digits and patches
    "mlp": {"ece": 0.015, "auroc": 0.97, "flagged": 0.85},
    "cnn": {"ece": 0.015, "auroc": 0.99, "flagged": 0.95},
}


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def section(reports: dict[str, EvalReport]) -> str:
    lines = [
        "| model | test top-1 / top-2 | ECE `probabilities` "
        "| ECE `calibrated_probabilities` (target <= 0.015) | T |",
        "|---|---|---|---|---|",
    ]
    for name, r in reports.items():
        lines.append(
            f"| `{name}` | {100 * r.top1:.2f}% / {100 * r.top2:.2f}% | {r.ece_probabilities:.4f} "
            f"| {r.ece_calibrated:.4f} ({_met(r.ece_calibrated <= TARGETS[name]['ece'])}) "
            f"| {r.temperature:.4f} |"
        )
    lines += [
        "",
        "Telling images the model never saw from the real test set (10,000 images). Each OOD "
        "set is built offline by `fashion_onnx.eval.ood_sets`: **digits** (scikit-learn's "
        "`load_digits`, 1,797, upscaled to 28x28), **patches** (2,100 random crops of "
        "scikit-image's 14 bundled photos, resized to 28x28), **noise** (2,000 uniform), "
        "**inverted** (2,000 test images, dark on light). Unknown = above the model's default "
        "threshold, which keeps 95% of the test set; AUROC by the energy score the rows use "
        "(in brackets: the maximum softmax probability of the calibrated probabilities). "
        "Targets (digits and patches): AUROC >= 0.99 and >= 95% unknown "
        "for the CNN, >= 0.97 and >= 85% for the MLP.",
        "",
        "| model | set | AUROC energy (MSP) | unknown at the default threshold | target |",
        "|---|---|---|---|---|",
    ]
    for name, r in reports.items():
        assert r.ood is not None
        msp = {s.name: s for s in r.ood.sets["msp"]}
        for s in r.ood.sets["energy"]:
            target = ""
            if s.name in ("digits", "patches"):
                t = TARGETS[name]
                ok = s.auroc >= t["auroc"] and s.flagged >= t["flagged"]
                target = f"{t['auroc']} / {100 * t['flagged']:.0f}%: {_met(ok)}"
            lines.append(
                f"| `{name}` | {s.name} | {s.auroc:.4f} ({msp[s.name].auroc:.4f}) "
                f"| {100 * s.flagged:.1f}% | {target} |"
            )
    speed = [
        f"`{name}` batch 1 p50 {s.p50_ms:.2f} ms / p99 {s.p99_ms:.2f} ms, batch 1,024 "
        f"{s.images_per_s:,.0f} img/s"
        for name, r in reports.items()
        for s in r.speed
        if s.device == "cpu"
    ]
    lines += [
        "",
        f"Speed as `fashion-eval` measures it ({cpu_model()}, {_cores()} CPUs, shared): "
        + "; ".join(speed)
        + ".",
        "",
        "![MLP reliability](models/trust/mlp-reliability.png) "
        "![CNN reliability](models/trust/cnn-reliability.png)",
        "",
        "![CNN confusion matrix](models/trust/cnn-confusion.png)",
        "",
    ]
    return "\n".join(lines)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    data = test_set()
    reports = {name: evaluate(name, data, cuda=False) for name in ("mlp", "cnn")}
    for name, report in reports.items():
        write_plots(report, OUT, prefix=f"{name}-")
        (OUT / f"{name}.json").write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    update_readme(ROOT / "README.md", section(reports), marker="trust")


if __name__ == "__main__":
    main()
