"""Benchmark 6: --engine ray on a local Ray against the local engine, the same files and
cores, at 10,000 and 100,000 images, as whole processes in alternating rounds.

Ray's start-up (a local Ray and its first dataset, measured on a one-image folder) is
reported apart; the throughput compared is the one after start-up.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.common import WORK, median_processes
from bench.end_to_end import infer_cmd

TARGET = 0.5  # Ray's throughput against the local engine's, at 100,000 images
MEASURABLE_SHARE = 0.1


def run(folders: dict[int, Path], one: Path, repeats: int) -> dict:
    # A HOME of its own: a local Ray writes its token to ~/.ray.
    home = tempfile.mkdtemp(prefix="bench-ray-home-")
    env = {"HOME": home, "RAY_ADDRESS": ""}
    counts = sorted(folders)
    cmds = [infer_cmd(one, WORK / "ray-one.csv", "--engine", "ray")]
    for n in counts:
        cmds.append(infer_cmd(folders[n], WORK / f"local-{n}.csv"))
        cmds.append(infer_cmd(folders[n], WORK / f"ray-{n}.csv", "--engine", "ray"))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        runs = median_processes(cmds, repeats, warmup=0)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    startup = runs[0].seconds
    rows = []
    for i, n in enumerate(counts):
        local, on_ray = runs[1 + 2 * i], runs[2 + 2 * i]
        # Past start-up only where that part is a tenth of the run or more: on a few
        # hundred files it drowns in start-up's own spread (None, and the report says so).
        beyond = on_ray.seconds - startup
        after = n / beyond if beyond >= MEASURABLE_SHARE * on_ray.seconds else None
        rows.append(
            {
                "images": n,
                "local_images_per_s": n / local.seconds,
                "ray_images_per_s": n / on_ray.seconds,
                "ray_after_startup_images_per_s": after,
                "ray_peak_rss_mb": on_ray.peak_rss_mb,
                "ray_vs_local": local.seconds / on_ray.seconds,
                "ray_after_startup_vs_local": None if after is None else after * local.seconds / n,
            }
        )
    last = rows[-1]["ray_after_startup_vs_local"]
    return {
        "ray_startup_seconds": startup,
        "rows": rows,
        "targets": {"ray_after_startup_vs_local at the largest size": f">= {TARGET}"},
        "met": last is not None and last >= TARGET,
    }
