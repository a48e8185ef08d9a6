"""#30's speed target: photos as taken, whole process, against a decode-only loop.

6,000 photos as taken (seed 33; JPEG and PNG, 300-600 pixels a side) in one folder, made
once. fashion-infer (decode, EXIF, the photo preparation, the model, CSV rows) against
``bench.decode_only --photos`` (Pillow, JPEGs drafted, a process pool over all cores, no
model), in alternating rounds. Beside it, what the EXIF check costs a file without the
tag: the same 2,000 JPEGs decoded and prepared in this process with the check and with
it patched out, alternating; and where the time goes, on one core (``one_core_costs``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench.common import PYTHON, WORK, median_processes
from bench.cores import infer
from bench.photos import taken_set


def folder(images: np.ndarray, count: int, name: str) -> Path:
    """WORK/name: ``count`` photos as taken (seed 33), written once."""
    root = WORK / name
    if (root / ".complete").exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    _, shots = taken_set(images, count, 33)
    for i, shot in enumerate(shots):
        photo = shot.save()
        (root / f"{i:05d}{photo.suffix}").write_bytes(photo.data)
    (root / ".complete").touch()
    return root


def exif_check_cost(paths: list[Path], rounds: int) -> dict:
    """Seconds per file of decode_chunk on files without an EXIF tag, with the check
    and without it (images.orientation patched to answer 1), alternating."""
    from fashion_onnx.infer import decode, images
    from fashion_onnx.infer.prepare import Preparation

    data = [p.read_bytes() for p in paths]
    real = images.orientation
    times: dict[str, list[float]] = {"with_check": [], "without_check": []}
    for _ in range(rounds):
        for name, check in (("with_check", real), ("without_check", lambda image: 1)):
            images.orientation = check
            decode.orientation = check
            start = time.perf_counter()
            decode.decode_chunk(data, Preparation())
            times[name].append((time.perf_counter() - start) / len(data))
    images.orientation = real
    decode.orientation = real
    median = {k: float(np.median(v)) for k, v in times.items()}
    # the check alone, on the same files decoded: what the whole-decode ratio above,
    # noisy by a few percent on a shared machine, cannot resolve
    from PIL import Image

    opened = [Image.open(p) for p in paths]
    for image in opened:
        image.load()
    repeats = 50
    start = time.perf_counter()
    for _ in range(repeats):
        for image in opened:
            real(image)
    check_us = 1e6 * (time.perf_counter() - start) / (repeats * len(opened))
    for image in opened:
        image.close()
    return {
        **{f"{k}_us": 1e6 * v for k, v in median.items()},
        "ratio": median["with_check"] / median["without_check"],
        "check_alone_us": check_us,
    }


def one_core_costs(paths: list[Path], rounds: int) -> dict:
    """Milliseconds a file, in this process, of: the decode-only loop's work on it
    (``decode_only.decode_drafted``); fashion-infer's decode alone (libspng for a common
    PNG, else Pillow, whole and in colour, upright: what every client decodes); and its
    photo preparation on those pixels. Alternating rounds, medians. Where the whole
    process's ratio goes: the decode alone against the loop shows what is left for the
    preparation and the model."""
    from bench.decode_only import decode_drafted
    from fashion_onnx.infer.images import MAX_PIXELS, load_rgb
    from fashion_onnx.infer.photo import prepare_photo
    from fashion_onnx.infer.png import decode_png

    data = [p.read_bytes() for p in paths]
    names = [str(p) for p in paths]

    def ours_decode() -> list[np.ndarray]:
        return [
            pixels if (pixels := decode_png(d, MAX_PIXELS)) is not None else load_rgb(d)
            for d in data
        ]

    decoded = ours_decode()
    steps = {
        "loop_decode": lambda: decode_drafted(names),
        "our_decode": ours_decode,
        "our_preparation": lambda: [prepare_photo(p) for p in decoded],
    }
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(1e3 * (time.perf_counter() - start) / len(paths))
    ms = {f"{k}_ms": float(np.median(v)) for k, v in times.items()}
    return {
        "files": len(paths),
        **ms,
        "our_decode_vs_loop": ms["our_decode_ms"] / ms["loop_decode_ms"],
    }


def run(images: np.ndarray, quick: bool) -> dict:
    count = 300 if quick else 6000
    photos = folder(images, count, f"{'quick-' if quick else ''}photos-speed-{count}")
    out = WORK / "photo-speed.csv"
    decode_only = [PYTHON, "-m", "bench.decode_only", str(photos), "--photos"]
    ours, loop = median_processes(
        [infer([str(photos)], out, "--format", "csv"), decode_only], 1 if quick else 3
    )
    jpegs = sorted(photos.glob("*.jpg"))[: 200 if quick else 2000]
    files = sorted(photos.iterdir())
    return {
        "files": count,
        "jpeg": sum(p.suffix == ".jpg" for p in files),
        "png": sum(p.suffix == ".png" for p in files),
        "seconds": {"ours": ours.seconds, "decode_only": loop.seconds},
        "images_per_s": {"ours": count / ours.seconds, "decode_only": count / loop.seconds},
        "vs_decode_only": loop.seconds / ours.seconds,
        "exif_check": exif_check_cost(jpegs, 3 if quick else 7),
        "one_core": one_core_costs(
            [p for p in files if p.suffix in (".jpg", ".png")][:: 20 if quick else 5],
            3 if quick else 5,
        ),
        "targets": {"vs_decode_only": ">= 1.0", "exif_check": "nothing measurable"},
    }
