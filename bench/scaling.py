"""Benchmark 5: fashion-infer at 1k, 10k and 100k files (the larger sets repeat files).

Throughput is taken two ways: whole process (interpreter start included), and as the
CLI reports it (from its start: discovery, pool start, decoding, engine, output).
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.common import WORK, run_process
from bench.end_to_end import infer_cmd

REPORTED = re.compile(r"([\d,]+) images/s \(([\d.]+)s\)")


def run(folders: dict[int, Path]) -> dict:
    rows = []
    for count, folder in sorted(folders.items()):
        result = run_process(infer_cmd(folder, WORK / f"scale-{count}.csv"))
        match = REPORTED.search(result.stderr)
        rows.append(
            {
                "images": count,
                "process_images_per_s": count / result.seconds,
                "reported_images_per_s": float(match.group(1).replace(",", "")),
                "reported_seconds": float(match.group(2)),
                "peak_rss_mb": result.peak_rss_mb,
            }
        )
    base = rows[0]
    for previous, row in zip([None, *rows], rows, strict=False):
        row["throughput_vs_smallest"] = row["reported_images_per_s"] / base["reported_images_per_s"]
        row["rss_vs_smallest"] = row["peak_rss_mb"] / base["peak_rss_mb"]
        if previous is not None:  # the per-image rate once start-up costs are paid
            added = row["images"] - previous["images"]
            row["marginal_images_per_s"] = added / (
                row["reported_seconds"] - previous["reported_seconds"]
            )
    return {
        "rows": rows,
        "targets": {"throughput_vs_smallest": "0.8 .. 1.2", "peak_rss": "does not grow; < 400 MB"},
        "met": all(0.8 <= r["throughput_vs_smallest"] <= 1.2 for r in rows)
        and all(r["rss_vs_smallest"] <= 1.2 and r["peak_rss_mb"] < 400 for r in rows),
    }
