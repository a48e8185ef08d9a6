"""Run every benchmark in one go; write bench/results.json and bench/results.md.

    python -m bench            # the full run (make bench), several minutes
    python -m bench --quick    # a smoke run on small inputs (the test suite uses it)

Every figure is a ratio against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

from bench import (
    cold_start,
    cores,
    end_to_end,
    engine,
    journal,
    model_card,
    photo_parity,
    photo_speed,
    photos,
    ray_engine,
    serve,
    streaming,
    training,
)
from bench.common import ROOT, WORK, machine_facts
from bench.inputs import linked_folder, png_folder
from bench.report import (
    journal_table,
    markdown,
    model_comparison,
    parity_table,
    photo_table,
    scaling_notes,
    serving_table,
    update_readme,
)

CHECKPOINT = ROOT / "models" / "fashion_mlp.pth"
CNN_CHECKPOINT = ROOT / "models" / "fashion_cnn.pth"
SECTIONS = (
    "cores",
    "training",
    "engine",
    "end_to_end",
    "cold_start",
    "streaming",
    "ray",
    "models",
    "photos",
    "parity",
    "serving",
    "journal",
)


def merged_into_earlier(results: dict, earlier_file: Path) -> dict:
    """A partial run (--only) replaces its sections in the earlier full results. Each
    section records the machine it was measured on (``machines``), and every table names
    it: a table is one section, or says which of its rows came from another machine."""
    if not earlier_file.exists():
        return results
    earlier = json.loads(earlier_file.read_text())
    if earlier.get("quick"):
        raise SystemExit(f"{earlier_file} holds a quick smoke run: run every section")
    measured = {**earlier.get("measured", {}), **results["measured"]}
    machines = {section: earlier["machine"] for section in earlier.get("measured", {})}
    machines.update(earlier.get("machines", {}))
    machines.update({section: results["machine"] for section in results["measured"]})
    merged = {**earlier, **results, "measured": measured, "machines": machines}
    merged["machine"] = earlier["machine"]  # the full run's; ``machines`` has the rest
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small inputs, one repeat")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench", help="where results go")
    parser.add_argument("--training-repeats", type=int, default=1)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the README's tables from bench/results.json, measuring nothing",
    )
    args = parser.parse_args()
    if args.report_only:
        results = json.loads((args.out / "results.json").read_text())
        update_readme(ROOT / "README.md", markdown(results))
        update_readme(ROOT / "README.md", model_comparison(results), "models")
        update_readme(ROOT / "README.md", scaling_notes(results), "scaling")
        update_readme(ROOT / "README.md", photo_table(results), "photos")
        update_readme(ROOT / "README.md", parity_table(results), "parity")
        update_readme(ROOT / "README.md", serving_table(results), "serving")
        update_readme(ROOT / "README.md", journal_table(results), "journal")
        return

    from fashion_onnx.export import export_onnx
    from fashion_onnx.export.variants import variant_path, write_fp16, write_int8
    from fashion_onnx.infer.contract import default_model_path
    from fashion_onnx.train.data import load_fashion_mnist, to_input

    started = time.perf_counter()
    data = load_fashion_mnist(download=False)
    count = 300 if args.quick else 10_000
    test_u8 = data.test_images.numpy()[:count]
    results: dict[str, object] = {"machine": machine_facts(), "quick": args.quick}
    prefix = "quick-" if args.quick else ""

    if "training" in args.only:
        print("training: seed recipe vs default recipe ...", flush=True)
        results["training"] = training.run(args.quick, args.training_repeats)
    if "engine" in args.only:
        print("engine: fp32 / int8 / fp16 vs torch vs roofline ...", flush=True)
        onnx = WORK / f"{prefix}model.onnx"
        mlp_report = export_onnx(CHECKPOINT, onnx, precisions=("int8", "fp16"))
        files = {p: variant_path(onnx, p) for p in ("int8", "fp16")}
        results["engine"] = engine.run(
            {"fp32": onnx, **files}, CHECKPOINT, to_input(data.test_images).numpy(), args.quick
        )
        print("engine: the CNN, fp32 / int8 / fp16 vs torch ...", flush=True)
        cnn = WORK / f"{prefix}cnn.onnx"
        cnn_files = {p: variant_path(cnn, p) for p in ("int8", "fp16")}
        cnn_variants: list[dict[str, object]] = []
        if args.quick:  # a smoke run: the embedded CNN (the export of CNN_CHECKPOINT) and
            # its variants, written without the export's minute of checks (test_cnn has them)
            shutil.copyfile(default_model_path("cnn"), cnn)
            write_int8(cnn, cnn_files["int8"], "dynamic", None)
            write_fp16(cnn, cnn_files["fp16"])
        else:
            cnn_report = export_onnx(CNN_CHECKPOINT, cnn, precisions=("int8", "fp16"))
            cnn_variants = [dataclasses.asdict(v) for v in cnn_report.variants]
        results["engine_cnn"] = engine.run_cnn(
            {"fp32": cnn, **cnn_files},
            CNN_CHECKPOINT,
            to_input(data.test_images).numpy(),
            args.quick,
        )
        results["variants"] = {
            "mlp": [dataclasses.asdict(v) for v in mlp_report.variants],
            "cnn": cnn_variants,
        }
    folder = png_folder(test_u8, f"{prefix}png")
    if "end_to_end" in args.only:
        print(
            f"end to end: fashion-infer on {count} PNGs vs decode-only vs quickstart loop ...",
            flush=True,
        )
        one = png_folder(test_u8[:1], f"{prefix}one")
        results["end_to_end"] = end_to_end.run(folder, one, CHECKPOINT, count, args.quick)
    if "cores" in args.only:
        print(
            "cores: 100k PNGs vs decode-only, main/worker CPU at 200k, workers, arrays ...",
            flush=True,
        )
        results["cores"] = cores.run(folder, test_u8, args.quick)
    if "cold_start" in args.only:
        print("cold start: one image, whole processes ...", flush=True)
        results["cold_start"] = cold_start.run(folder / "00000.png", CHECKPOINT, args.quick)

    def folders(sizes: tuple[int, ...]) -> dict[int, Path]:
        return {
            n: folder if n == count else linked_folder(folder, n, f"{prefix}links-{n}")
            for n in sizes
        }

    repeats = 1 if args.quick else 3
    if "streaming" in args.only:
        sizes = (300, 3000) if args.quick else (10_000, 200_000)
        print(f"streaming: peak RSS at {sizes[0]:,} and {sizes[1]:,} files ...", flush=True)
        results["streaming"] = streaming.run(folders(sizes), repeats)
    if "ray" in args.only:
        sizes = (300,) if args.quick else (10_000, 100_000)
        print(f"ray: --engine ray vs local at {', '.join(f'{n:,}' for n in sizes)} ...", flush=True)
        one = png_folder(test_u8[:1], f"{prefix}one")
        results["ray"] = ray_engine.run(folders(sizes), one, repeats)
    if "models" in args.only:
        print("models: test and samples/ accuracy of each embedded model ...", flush=True)
        results["models"] = model_card.run()
    if "photos" in args.only:
        print("photos: both models on test garments as photos, trim vs full ...", flush=True)
        results["photos"] = photos.run(
            data.test_images.numpy(), data.test_labels.numpy(), args.quick
        )
        print("photos: 6,000 photos as taken, fashion-infer vs decode-only ...", flush=True)
        results["photos"]["speed"] = photo_speed.run(data.test_images.numpy(), args.quick)
    if "parity" in args.only:
        print("parity: the photo models in Python, Node, Chromium, onnx.reference ...", flush=True)
        results["parity"] = photo_parity.run(
            data.test_images.numpy(), data.test_labels.numpy(), args.quick
        )
    if "serving" in args.only:
        print("serving: fashion-serve vs a Starlette route, wrk at 64 connections ...", flush=True)
        if args.quick and shutil.which("wrk") is None:
            results["serving"] = {"skipped": "wrk is not installed"}
        else:
            results["serving"] = serve.run(test_u8[0], 2 if args.quick else serve.DURATION_S)
    if "journal" in args.only:
        size = 3000 if args.quick else 200_000
        print(f"journal: -o with the journal vs stdout to a file, {size:,} files ...", flush=True)
        tree = WORK / "tree-200k"
        if args.quick or not tree.is_dir():
            tree = linked_folder(folder, size, f"{prefix}links-{size}")
        # a few percent to resolve on a noisy machine: more rounds than the other sections
        results["journal"] = journal.run(tree, 1 if args.quick else 7)
    results["seconds"] = time.perf_counter() - started
    today = time.strftime("%Y-%m-%d")
    results["measured"] = {section: today for section in args.only}
    if not args.quick and args.only != list(SECTIONS):
        results = merged_into_earlier(results, args.out / "results.json")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    card = model_comparison(results)
    (args.out / "results.md").write_text(table + "\n" + card + "\n" + serving_table(results))
    if not args.quick and all(section in results for section in SECTIONS):
        update_readme(ROOT / "README.md", table)
        update_readme(ROOT / "README.md", card, "models")
        update_readme(ROOT / "README.md", scaling_notes(results), "scaling")
        update_readme(ROOT / "README.md", photo_table(results), "photos")
        update_readme(ROOT / "README.md", parity_table(results), "parity")
        update_readme(ROOT / "README.md", serving_table(results), "serving")
    if not args.quick and "journal" in results:
        update_readme(ROOT / "README.md", journal_table(results), "journal")
    print(table)


if __name__ == "__main__":
    main()
