"""Benchmark 4: ``fashion-infer one.png`` against the quickstart way, as whole processes."""

from __future__ import annotations

from pathlib import Path

from bench.common import BIN, PYTHON, median_processes, run_process


def run(image: Path, checkpoint: Path, quick: bool) -> dict:
    repeats = 1 if quick else 5
    ours, theirs = median_processes(
        [
            [str(BIN / "fashion-infer"), str(image), "--no-progress"],
            [PYTHON, "-m", "bench.quickstart_predict", str(checkpoint), str(image)],
        ],
        repeats,
    )
    # Every module the real entry point imports, from CPython's own import log.
    traced = run_process(
        [str(BIN / "fashion-infer"), str(image), "--no-progress"],
        env={"PYTHONPROFILEIMPORTTIME": "1"},
    )
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in traced.stderr.splitlines() if "|" in line
    }
    torch_imported = any(m.split(".")[0] in ("torch", "onnx", "matplotlib") for m in imported)
    return {
        "ours": {"seconds": ours.seconds, "peak_rss_mb": ours.peak_rss_mb},
        "quickstart": {"seconds": theirs.seconds, "peak_rss_mb": theirs.peak_rss_mb},
        "time_ratio": ours.seconds / theirs.seconds,
        "rss_ratio": ours.peak_rss_mb / theirs.peak_rss_mb,
        "heavy_modules_imported": torch_imported,
        "targets": {
            "time_ratio": "<= 0.25",
            "rss_ratio": "<= 0.25",
            "heavy_modules_imported": "false",
        },
        "met": ours.seconds / theirs.seconds <= 0.25
        and ours.peak_rss_mb / theirs.peak_rss_mb <= 0.25
        and not torch_imported,
    }
