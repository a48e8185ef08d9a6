"""Benchmark 5: fashion-infer streams: peak RSS and throughput at 10,000 and 200,000 files
(the larger folder holds hard links to the same PNGs). Whole processes, one at a time."""

from __future__ import annotations

from pathlib import Path

from bench.common import WORK, median_processes
from bench.end_to_end import infer_cmd

RSS_GROWTH_MB = 15  # the target: 200,000 files within this much of the peak at 10,000


def run(folders: dict[int, Path], repeats: int) -> dict:
    counts = sorted(folders)
    runs = median_processes(
        [infer_cmd(folders[n], WORK / f"stream-{n}.csv") for n in counts], repeats, warmup=0
    )
    rows = [
        {
            "images": n,
            "seconds": r.seconds,
            "images_per_s": n / r.seconds,
            "peak_rss_mb": r.peak_rss_mb,
        }
        for n, r in zip(counts, runs, strict=True)
    ]
    growth = rows[-1]["peak_rss_mb"] - rows[0]["peak_rss_mb"]
    return {
        "rows": rows,
        "rss_growth_mb": growth,
        "targets": {"rss_growth_mb": f"<= {RSS_GROWTH_MB}"},
        "met": growth <= RSS_GROWTH_MB,
    }
