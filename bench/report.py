"""Render bench results as the markdown table the README includes."""

from __future__ import annotations

from pathlib import Path


def _yes(met: object) -> str:
    return "yes" if met is True else "no" if met is False else str(met)


def machine_of(r: dict, section: str) -> dict:
    """The machine a section was measured on (``machines``: a partial run's sections)."""
    return r.get("machines", {}).get(section, r["machine"])


def _elsewhere(r: dict, sections: tuple[str, ...]) -> str:
    """One sentence naming those of ``sections`` measured on another CPU than the table's
    header, or ""."""
    cpu = r["machine"]["cpu"]
    other = [s for s in sections if s in r and machine_of(r, s)["cpu"] != cpu]
    if not other:
        return ""
    named = "; ".join(
        f"{s}: {machine_of(r, s)['cpu']}, {machine_of(r, s)['cpus_usable']} "
        f"CPUs, on {r['measured'][s]}"
        for s in other
    )
    return f" Sections measured on another machine: {named}."


def markdown(r: dict) -> str:
    m = r["machine"]
    sections = ("cores", "training", "engine", "end_to_end", "cold_start", "streaming", "ray")
    lines = [
        f"Measured on {m['cpu']}, {m['cpus_usable']} usable CPUs, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + (" (QUICK smoke run: not representative)" if r.get("quick") else "")
        + _elsewhere(r, sections),
        "",
        "| # | what | measured | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    if "cores" in r:
        c = r["cores"]
        s, sc, a = c["seconds"], c["scaling_images_per_s"], c["arrays"]
        lines.append(
            f"| 0 | fashion-infer on {c['images']:,} PNGs (10 folders), whole process "
            f"| {c['images'] / s['ours']:,.0f} img/s ({s['ours']:.2f} s) "
            f"| decode-only Pillow loop, process pool: {c['images'] / s['decode_only']:,.0f} img/s "
            f"| {c['vs_decode_only']:.2f}x | >= 2.0x | {_yes(c['vs_decode_only'] >= 2.0)} |"
        )
        lines.append(
            f"| 0 | CPU per image at {c['split_images']:,} PNGs | main process "
            f"{c['main_us_per_image']:.2f} us; workers {c['workers_us_per_image']:.1f} us, of which "
            f"the model runner {c['engine_us_per_image']:.1f} us and the rest "
            f"{c['workers_but_engine_us_per_image']:.1f} us | /proc of the main process; the "
            f"model runner alone, one thread | Amdahl cap {c['amdahl_worker_cores']:.0f} worker cores "
            f"| main <= 2 us; the rest <= 12 us (set on an AMD EPYC) "
            f"| {_yes(c['main_us_per_image'] <= 2)}; {_yes(c['workers_but_engine_us_per_image'] <= 12)} |"
        )
        one, two = sc.get("1", sc.get(1)), sc.get("2", sc.get(2))
        lines.append(
            f"| 0 | scaling on {c['images']:,} PNGs | --workers 2: {two:,.0f} img/s "
            f"| --workers 1: {one:,.0f} img/s | {two / one:.2f}x | reported | n/a |"
        )
        idx = ", ".join(f"{m.upper()} {100 * v:.2f}%" for m, v in a["idx_accuracy"].items())
        lines.append(
            f"| 0 | arrays: Debian's t10k IDX with its labels; {a['npy_images']:,} images "
            f"from a .npy | {idx}; {a['npy_images'] / a['npy_seconds']['ours']:,.0f} img/s "
            f"| the model card; the plain script (np.load, one session, batches of 1,024, "
            f"CSV): {a['npy_images'] / a['npy_seconds']['plain_script']:,.0f} img/s "
            f"| {a['npy_vs_plain']:.2f}x | the card's exactly; >= 0.9x "
            f"| see the card; {_yes(a['npy_vs_plain'] >= 0.9)} |"
        )
    if "training" in r:
        t = r["training"]
        lines.append(
            f"| 1 | training, default recipe | {t['ours_seconds']:.1f} s, {100 * t['ours_accuracy']:.2f}% "
            f"| seed recipe: {t['seed_seconds']:.1f} s, {100 * t['seed_accuracy']:.2f}% "
            f"| {t['time_ratio']:.2f}x time | accuracy >= 90.0%, time <= 0.75x | {_yes(t['met'])} |"
        )
        lines.append(
            f"| 1 | training, CNN recipe{' (bfloat16)' if t['cnn_bf16'] else ''} | {t['cnn_seconds']:.1f} s, {100 * t['cnn_accuracy']:.2f}% "
            f"| seed recipe: {t['seed_seconds']:.1f} s | {t['cnn_time_ratio']:.1f}x time "
            f"| accuracy >= 93.5%, time <= 15x | {_yes(t['cnn_met'])} |"
        )
    if "engine" in r:
        e = r["engine"]
        for row in e["rows"]:
            lines.append(
                f"| 2 | model runner, batch {row['batch']}: fp32 / int8 / fp16 img/s "
                f"| {row['fp32']:,.0f} / {row['int8']:,.0f} / {row['fp16']:,.0f} "
                f"| torch {row['torch']:,.0f}; roofline {e['roofline_images_per_s']:,.0f} "
                f"({e['sgemm_gflops']:.0f} GFLOP/s) "
                f"| fp32 {row['fp32_vs_torch']:.2f}x torch, {row['fp32_vs_roofline']:.2f} of roofline; "
                f"int8 {row['int8_vs_fp32']:.2f}x fp32"
                + (
                    f" ({row['int8_vs_fp32_one_thread']:.2f}x with one thread)"
                    if "int8_vs_fp32_one_thread" in row
                    else ""
                )
                + " | batch >= 64: >= 1.2x torch, >= 0.85 roofline, int8 >= 3x "
                f"| {'n/a (batch 1)' if row['batch'] < 64 else _yes(row['fp32_vs_torch'] >= 1.2 and row['fp32_vs_roofline'] >= 0.85 and row['int8_vs_fp32'] >= 3)} |"
            )
    if "engine_cnn" in r:
        for row in r["engine_cnn"]["rows"]:
            lines.append(
                f"| 2 | CNN model runner, batch {row['batch']}: fp32 / int8 / fp16 img/s "
                f"| {row['fp32']:,.0f} / {row['int8']:,.0f} / {row['fp16']:,.0f} "
                f"| torch {row['torch']:,.0f} "
                f"| fp32 {row['fp32_vs_torch']:.2f}x torch; int8 {row['int8_vs_fp32']:.2f}x fp32 "
                f"| reported | n/a |"
            )
    for arch, variants in r.get("variants", {}).items():
        for v in variants:
            if v["precision"] != "int8":
                continue
            bound = 0.3 if arch == "mlp" else 0.5
            speed_target = ">= 3x at batch 64" if arch == "mlp" else "reported"
            met = -v["accuracy_delta_points"] <= bound and (
                arch == "cnn" or v["speedup_batch64"] >= 3
            )
            lines.append(
                f"| 2 | {arch.upper()} int8 ({v['method']}, chosen at export) | {100 * v['accuracy']:.2f}%, "
                f"{v['accuracy_delta_points']:+.2f} points, {v['size_bytes']:,} bytes "
                f"| fp32, same export | {v['speedup_batch64']:.2f}x fp32 at batch 64 ({v['choice']}) "
                f"| drop <= {bound} points; {speed_target} | {_yes(met)} |"
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
        lines.append(
            f"| 3 | fashion-infer --model cnn on {x['images']:,} PNGs, whole process | {cell('ours_cnn')} "
            f"| the MLP's run above | {rate['ours_cnn'] / rate['ours']:.2f}x the MLP | reported | n/a |"
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
            after, ratio = row["ray_after_startup_images_per_s"], row["ray_after_startup_vs_local"]
            after_cell = (
                "too few images to tell past" if after is None else f"{after:,.0f} img/s after"
            ) + f" Ray's start-up ({x['ray_startup_seconds']:.1f} s)"
            ratio_cell = "" if ratio is None else f"; {ratio:.2f}x after start-up"
            lines.append(
                f"| 6 | --engine ray (local Ray) on {row['images']:,} PNGs | {row['ray_images_per_s']:,.0f} img/s whole process; "
                f"{after_cell} "
                f"| local engine {row['local_images_per_s']:,.0f} img/s "
                f"| {row['ray_vs_local']:.2f}x whole{ratio_cell} "
                f"| >= 0.5x at 100,000 | {_yes(x['met']) if row is x['rows'][-1] else 'n/a'} |"
            )
    return "\n".join(lines) + "\n"


def model_comparison(r: dict) -> str:
    """The model card's rows, one per embedded model, from the same run's figures."""
    if not {"models", "engine", "engine_cnn", "end_to_end"} <= r.keys():
        return ""
    engines = {"mlp": r["engine"]["rows"], "cnn": r["engine_cnn"]["rows"]}
    e2e = {
        "mlp": r["end_to_end"]["images_per_s"]["ours"],
        "cnn": r["end_to_end"]["images_per_s"]["ours_cnn"],
    }
    lines = [
        "| model | test accuracy | samples/ (20 files) | size | model runner img/s, batch 1 / 1,024 (fp32) | fashion-infer on 10,000 PNGs |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in r["models"].items():
        by_batch = {row["batch"]: row["fp32"] for row in engines[name]}
        lines.append(
            f"| `{name}` | {100 * m['test_accuracy']:.2f}% | {m['samples_right']}/{m['samples_judged']} "
            f"| {m['size_bytes']:,} bytes | {by_batch[1]:,.0f} / {by_batch[1024]:,.0f} | {e2e[name]:,.0f} img/s |"
        )
    if "training" in r and r["training"].get("cnn_curve"):
        lines += [
            "",
            "The CNN's test accuracy after each epoch of its 20-epoch run, against the time "
            f"spent ({'bfloat16' if r['training']['cnn_bf16'] else 'float32'}, this run). "
            "Mid-run the learning rate is still high, so a shorter run, whose own schedule "
            "anneals sooner, ends above the row at its length (15 epochs: 93.64% in a side "
            "study here, before outlier exposure):",
            "",
            "| epoch | minutes | test accuracy |",
            "|---|---|---|",
        ]
        lines += [
            f"| {epoch} | {seconds / 60:.1f} | {100 * acc:.2f}% |"
            for epoch, seconds, acc in r["training"]["cnn_curve"]
        ]
    return "\n".join(lines) + "\n"


def photo_table(r: dict) -> str:
    """Accuracy on the same garments as 28x28 originals and as photos (#18, #30), and the
    photos as taken against a decode-only loop."""
    if "photos" not in r:
        return ""
    p = r["photos"]
    acc = p["accuracy"]

    def pct(model: str, key: str) -> str:
        return f"{100 * acc[model][key]:.1f}%"

    def gap(model: str, key: str, reference: str) -> str:
        return f"{100 * (acc[model][key] - acc[model][reference]):+.1f}"

    def row(label: str, key: str, reference: str | None = None) -> str:
        cells = [
            pct(m, key) + (f" ({gap(m, key, reference)})" if reference else "")
            for m in ("mlp", "cnn")
        ]
        return f"| {label} | {cells[0]} | {cells[1]} |"

    n, t = f"{p['images']:,}", f"{p['turned_images']:,}"
    lines = [
        "| the same garments (points against their 28x28 originals) | MLP | CNN |",
        "|---|---|---|",
        row(f"{n} garments (seed 18): the 28x28 originals", "margins_original_28x28"),
        row(
            "full frame, `--fit full` (the old behaviour)",
            "full_frame_full",
            "full_frame_original_28x28",
        ),
        row(
            "full frame, `--fit trim` (the default)", "full_frame_trim", "full_frame_original_28x28"
        ),
        row("with margins, `--fit full`", "margins_full", "margins_original_28x28"),
        row("**with margins** (target >= -2)", "margins_trim", "margins_original_28x28"),
        row(f"{n} other garments (seed 30): the 28x28 originals", "taken_30_original_28x28"),
        row("**as taken** (target >= -3)", "taken_30_trim", "taken_30_original_28x28"),
        row(
            f"{n} more (seed 31, never tuned on): as taken (target >= -3)",
            "taken_31_trim",
            "taken_31_original_28x28",
        ),
        row(
            f"{t} more (seed 32): as taken, stored upright",
            "upright_trim",
            "upright_original_28x28",
        ),
        row(
            "**the same, stored turned with an EXIF orientation** (points against upright: "
            "target >= -2)",
            "turned_trim",
            "upright_trim",
        ),
    ]
    m = machine_of(r, "photos")
    text = "\n".join(lines) + (
        f"\n\nMeasured by `make bench` ({m['cpu']}, {m['cpus_usable']} CPUs, "
        f"{r['measured']['photos']}).\n"
    )
    speed = p.get("speed")
    if speed:
        e = speed["exif_check"]
        text += (
            f"\nSpeed, {speed['files']:,} photos as taken ({speed['jpeg']:,} JPEG, "
            f"{speed['png']:,} PNG; seed 33), whole process: fashion-infer "
            f"{speed['images_per_s']['ours']:,.0f} img/s against a decode-only Pillow loop "
            f"(JPEGs drafted, a process pool, no model) at "
            f"{speed['images_per_s']['decode_only']:,.0f} img/s: "
            f"**{speed['vs_decode_only']:.2f}x** (target >= 1.0x). The EXIF check on a file "
            f"without the tag: {e['with_check_us']:.0f} us a JPEG with it, "
            f"{e['without_check_us']:.0f} us without ({e['ratio']:.3f}x)"
            + (
                f"; the check alone {e['check_alone_us']:.2f} us a file"
                if "check_alone_us" in e
                else ""
            )
            + ".\n"
        )
        c = speed.get("one_core")
        if c:
            text += (
                f"\nWhere the time goes, on one core ({c['files']:,} of those files, "
                f"milliseconds a file): the loop {c['loop_decode_ms']:.2f}; fashion-infer's "
                f"decode alone {c['our_decode_ms']:.2f} ({c['our_decode_vs_loop']:.2f}x the "
                f"loop: JPEGs whole and in colour, as every client decodes them, where the "
                f"loop drafts them in gray), then the preparation {c['our_preparation_ms']:.2f}."
                f" With a preparation that cost nothing, the whole process could reach about "
                f"{1 / c['our_decode_vs_loop']:.2f}x the loop.\n"
            )
    return text


def parity_table(r: dict) -> str:
    """The photo models in every runtime against fashion-infer (#33)."""
    if "parity" not in r:
        return ""
    x = r["parity"]
    lines = [
        "| runtime | model | photos | top-1 as fashion-infer (target >= 99.5%) | accuracy | "
        "PNG prepared within 1 level | JPEG prepared: within 1 level, mean \\|Δ\\| |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, entry in x["runtimes"].items():
        for runtime, f in entry.items():
            if not isinstance(f, dict):
                continue
            lines.append(
                f"| {runtime} | {model.upper()} | {f['photos']:,} | {100 * f['top1_agreement']:.2f}% "
                f"| {100 * f['accuracy']:.1f}% (fashion-infer "
                f"{100 * f.get('fashion_infer_accuracy', entry['fashion_infer_accuracy']):.1f}%) "
                f"| {100 * f['png_prepared_within_1']:.1f}% | {100 * f['jpeg_prepared_within_1']:.1f}%, "
                f"{f['jpeg_prepared_mean_diff']:.2f} |"
            )
    m = machine_of(r, "parity")
    return "\n".join(lines) + (
        f"\n\n{x['photos']:,} photo files ({x['jpeg']:,} JPEG): as taken, with margins and "
        f"stored turned; `onnx.reference` on a sample. Measured by `python -m bench --only "
        f"parity` ({m['cpu']}, {r['measured']['parity']}).\n"
    )


def _duration(seconds: float) -> str:
    return f"{seconds:,.0f} seconds" if seconds < 120 else f"{seconds / 60:,.0f} minutes"


def scaling_notes(r: dict) -> str:
    """What was measured with Ray here, and the per-node arithmetic it gives."""
    if not {"ray", "end_to_end"} <= r.keys():
        return ""
    x, cores = r["ray"], r["machine"]["cpus_usable"]
    big = x["rows"][-1]
    if big["ray_after_startup_images_per_s"] is None:  # a quick run: nothing to scale
        return ""
    per_core = big["ray_after_startup_images_per_s"] / cores
    local_core = r["end_to_end"]["steady_images_per_s"]["ours"] / cores
    hundred_m = 100e6 / (10 * 32 * per_core)
    cnn_cost = ""
    if "engine_cnn" in r:
        mlp = {row["batch"]: row["fp32"] for row in r["engine"]["rows"]}[1024]
        cnn = {row["batch"]: row["fp32"] for row in r["engine_cnn"]["rows"]}[1024]
        cnn_cost = f", whose model runs {mlp / cnn:.0f}x slower than the MLP here,"
    return (
        f"Measured here ({r['machine']['cpu']}, {cores} CPUs; `make bench`, rows 3 and 6 of "
        f"Performance): a local Ray starts in {x['ray_startup_seconds']:.1f} s; after that, "
        f"`--engine ray` classified {big['images']:,} PNGs at "
        f"{big['ray_after_startup_images_per_s']:,.0f} img/s "
        f"({big['ray_after_startup_vs_local']:.2f}x the local engine's "
        f"{big['local_images_per_s']:,.0f} img/s on the same cores).\n\n"
        f"Per node, the arithmetic: decoding dominates, at about {per_core:,.0f} img/s per core "
        f"through Ray ({local_core:,.0f} img/s per core with the local engine after its "
        "start-up). A 32-core node then does about "
        f"{32 * per_core:,.0f} img/s, and ten of them classify 100 million images in about "
        f"{_duration(hundred_m)}, if storage keeps up. A GPU adds little for the MLP: on "
        "an H100 its model runner takes 1.2-1.7 million img/s from host memory (On a GPU, below), "
        f"hundreds of cores' worth of decoding; for the CNN{cnn_cost} GPU actors pay off "
        "sooner.\n"
    )


def serving_table(r: dict) -> str:
    """fashion-serve against the Starlette baseline, under wrk, with the issue's targets."""
    x = r.get("serving")
    if not x or "runs" not in x:
        return f"Serving: not measured ({(x or {}).get('skipped', 'no results')}).\n"
    lines = [
        f"wrk, {x['connections']} connections, {x['seconds']} s per run, single-image requests; "
        f"both servers up at once, loaded in turn. {machine_of(r, 'serving')['cpu']}, "
        f"{machine_of(r, 'serving')['cpus_usable']} CPUs.",
        "",
        "| model | request | fashion-serve | baseline (Starlette, session.run per request) "
        "| throughput (target >= 1.5x) | p99 (target <= 50 ms) | failed (target 0) "
        "| RSS growth 10th-30th s (target <= 20 MB) | mean runner batch | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, row in x["runs"].items():
        model, encoding = key.split("/")
        ours, base = row["fashion_serve"], row["baseline"]
        met = (
            row["vs_baseline"] >= 1.5
            and ours["p99_ms"] <= 50
            and ours["failed"] == 0
            and ours["rss_growth_mb"] <= 20
        )
        kind = "multipart PNG" if encoding == "multipart" else "v2 binary"
        lines.append(
            f"| {model} | {kind} | {ours['requests_per_s']:,.0f} req/s, p99 {ours['p99_ms']:.0f} ms "
            f"| {base['requests_per_s']:,.0f} req/s, p99 {base['p99_ms']:.0f} ms "
            f"| {row['vs_baseline']:.2f}x | {ours['p99_ms']:.1f} ms | {ours['failed']:,} "
            f"| {ours['rss_growth_mb']:+.1f} MB | {ours['mean_batch']:.1f} | {_yes(met)} |"
        )
    return "\n".join(lines) + "\n"


def journal_table(r: dict) -> str:
    """What -o FILE's resume journal costs, and how soon --resume writes a new row."""
    x = r.get("journal")
    if not x:
        return "Journal: not measured.\n"
    resume = x["resume"]
    cost_met = x["cost"] <= 0.03
    if resume is None:  # the run ended before it could be stopped (a quick run)
        resume = {"first_new_row_s": float("nan"), "walk_s": float("nan"), "chunks_done": 0}
    resume_met = resume.get("over_walk_s", float("inf")) <= 1.0
    return (
        "\n".join(
            [
                f"{x['files']:,} PNG files, {machine_of(r, 'journal')['cpu']}, "
                f"{machine_of(r, 'journal')['cpus_usable']} CPUs.",
                "",
                "| measure | value | target | met |",
                "|---|---|---|---|",
                f"| `-o FILE` (journal) vs stdout to a file | {x['journal_s']:.1f} s vs "
                f"{x['stdout_to_file_s']:.1f} s: {100 * x['cost']:+.1f}% | <= 3% | {_yes(cost_met)} |",
                f"| `--resume` after Ctrl-C at half: start to first new row "
                f"| {resume['first_new_row_s']:.2f} s ({resume['walk_s']:.2f} s of it walking past "
                f"{resume['chunks_done']} finished chunks) | <= 1 s + the walk | {_yes(resume_met)} |",
            ]
        )
        + "\n"
    )


def update_readme(readme_path: Path, table: str, marker: str = "bench") -> None:
    """Put ``table`` between the README's ``<!-- marker:start -->`` and ``:end`` markers."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = readme_path.read_text()
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme_path.write_text(f"{head}{start}\n{table}{end}{tail}")
