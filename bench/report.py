"""Render bench results as the markdown table the README includes."""

from __future__ import annotations

from pathlib import Path


def _yes(met: object) -> str:
    return "yes" if met is True else "no" if met is False else str(met)


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"Measured on {m['cpu']}, {m['cpus_usable']} usable CPUs, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + (" (QUICK smoke run: not representative)" if r.get("quick") else ""),
        "",
        "| # | what | measured | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    if "training" in r:
        t = r["training"]
        lines.append(
            f"| 1 | training, default recipe | {t['ours_seconds']:.1f} s, {100 * t['ours_accuracy']:.2f}% "
            f"| seed recipe: {t['seed_seconds']:.1f} s, {100 * t['seed_accuracy']:.2f}% "
            f"| {t['time_ratio']:.2f}x time | accuracy >= 90.0%, time <= 0.75x | {_yes(t['met'])} |"
        )
    if "engine" in r:
        e = r["engine"]
        for row in e["rows"]:
            lines.append(
                f"| 2 | engine batch {row['batch']}: fp32 / int8 / fp16 img/s "
                f"| {row['fp32']:,.0f} / {row['int8']:,.0f} / {row['fp16']:,.0f} "
                f"| torch {row['torch']:,.0f}; roofline {e['roofline_images_per_s']:,.0f} "
                f"({e['sgemm_gflops']:.0f} GFLOP/s) "
                f"| fp32 {row['fp32_vs_torch']:.2f}x torch, {row['fp32_vs_roofline']:.2f} of roofline; "
                f"int8 {row['int8_vs_fp32']:.2f}x fp32 "
                f"| batch >= 64: >= 1.2x torch, >= 0.85 roofline, int8 >= 3x "
                f"| {'n/a (batch 1)' if row['batch'] < 64 else _yes(row['fp32_vs_torch'] >= 1.2 and row['fp32_vs_roofline'] >= 0.85 and row['int8_vs_fp32'] >= 3)} |"
            )
    if "end_to_end" in r:
        x = r["end_to_end"]
        rate, steady, up = x["images_per_s"], x["steady_images_per_s"], x["startup_seconds"]

        def cell(name: str) -> str:
            return f"{rate[name]:,.0f} img/s (start-up {up[name]:.2f} s; {steady[name]:,.0f} img/s after it)"

        lines.append(
            f"| 3 | fashion-infer on {x['images']:,} PNGs, whole process | {cell('ours')} "
            f"| decode-only {cell('decode_only')}; quickstart loop {cell('quickstart_loop')} "
            f"| {x['vs_decode_only']:.2f}x decode-only ({x['steady_vs_decode_only']:.2f}x after start-up); "
            f"{x['vs_quickstart_loop']:.1f}x loop "
            f"| >= 0.8x; >= 3x | {_yes(x['met'])} |"
        )
    if "cold_start" in r:
        c = r["cold_start"]
        lines.append(
            f"| 4 | cold start, one image | {c['ours']['seconds']:.2f} s, {c['ours']['peak_rss_mb']:.0f} MB "
            f"| quickstart: {c['quickstart']['seconds']:.2f} s, {c['quickstart']['peak_rss_mb']:.0f} MB "
            f"| {c['time_ratio']:.2f}x time, {c['rss_ratio']:.2f}x RSS; torch imported: "
            f"{_yes(c['heavy_modules_imported'])} | <= 0.25x both; no torch | {_yes(c['met'])} |"
        )
    if "streaming" in r:
        x = r["streaming"]
        cells = "; ".join(
            f"{row['images']:,} files: {row['images_per_s']:,.0f} img/s, {row['peak_rss_mb']:.0f} MB"
            for row in x["rows"]
        )
        lines.append(
            f"| 5 | streaming, whole process | {cells} | itself at {x['rows'][0]['images']:,} files "
            f"| peak RSS +{x['rss_growth_mb']:.1f} MB | peak RSS within +15 MB | {_yes(x['met'])} |"
        )
    if "ray" in r:
        x = r["ray"]
        for row in x["rows"]:
            lines.append(
                f"| 6 | --engine ray (local Ray) on {row['images']:,} PNGs | {row['ray_images_per_s']:,.0f} img/s whole process; "
                f"{row['ray_after_startup_images_per_s']:,.0f} img/s after Ray's start-up ({x['ray_startup_seconds']:.1f} s) "
                f"| local engine {row['local_images_per_s']:,.0f} img/s "
                f"| {row['ray_vs_local']:.2f}x whole; {row['ray_after_startup_vs_local']:.2f}x after start-up "
                f"| >= 0.5x at 100,000 | {_yes(x['met']) if row is x['rows'][-1] else 'n/a'} |"
            )
    return "\n".join(lines) + "\n"


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(readme_path: Path, table: str) -> None:
    """Put ``table`` between the README's bench markers."""
    text = readme_path.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme_path.write_text(f"{head}{START}\n{table}{END}{tail}")
