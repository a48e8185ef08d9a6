"""Both embedded models on real test garments as photos (``fashion_onnx.photosets``): full
frame, with margins, as taken, and stored turned with an EXIF orientation, each set
beside the same garments' 28x28 originals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.common import WORK
from fashion_onnx.photosets import (
    ORIENTATIONS,
    Photo,
    Shot,
    full_frame,
    shot_as_taken,
    with_margins,
)


def photo_set(
    images: np.ndarray, count: int, seed: int = 18
) -> tuple[np.ndarray, list[Photo], list[Photo]]:
    """(the indices of the ``count`` test images used, their full-frame photos, their
    photos with margins), the same for the same seed."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(images), size=count, replace=False))
    full = [full_frame(images[i], rng) for i in chosen]
    margins = [with_margins(images[i], rng) for i in chosen]
    return chosen, full, margins


def taken_set(images: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, list[Shot]]:
    """(the indices of ``count`` test images, their shots as taken), the same for the same
    seed."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(images), size=count, replace=False))
    return chosen, [shot_as_taken(images[i], rng) for i in chosen]


def _write(photos: list[Photo], name: str) -> list[Path]:
    """The photos as files in WORK/name (rewritten each run: the set is small)."""
    folder = WORK / name
    if folder.exists():
        for old in folder.iterdir():
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, photo in enumerate(photos):
        path = folder / f"{i:04d}{photo.suffix}"
        path.write_bytes(photo.data)
        paths.append(path)
    return paths


def _accuracy(model: str, fit: str, paths: list[Path], labels: np.ndarray) -> float:
    """Top-1 accuracy through fashion-infer's own path (classify_files: decode, prepare,
    engine, in worker processes)."""
    from fashion_onnx.infer import Classifier

    classifier = Classifier(model, device="cpu", fit=fit)  # type: ignore[arg-type]
    found: dict[str, int] = {}
    for batch in classifier.classify_files([str(p) for p in paths]):
        assert not batch.failures, batch.failures
        found.update(zip(batch.paths, batch.probabilities.argmax(1).tolist(), strict=True))
    predicted = np.array([found[str(p)] for p in paths])
    return float((predicted == labels).mean())


def run(images: np.ndarray, labels: np.ndarray, quick: bool) -> dict:
    """Both embedded models on the same garments as their 28x28 originals: full-frame
    photos and photos with margins (seed 18, each with --fit trim and --fit full), photos
    as taken (seed 30, and seed 31 as a check nobody tuned on), and photos as taken stored
    upright and stored turned with an EXIF orientation (seed 32)."""
    from fashion_onnx.infer import Classifier

    count = 60 if quick else 2000  # 2,000: a paired difference's noise is ~0.3 points
    turned_count = 30 if quick else 600
    prefix = "quick-" if quick else ""
    chosen, full, margins = photo_set(images, count)
    taken = {seed: taken_set(images, count, seed) for seed in (30, 31)}
    turned_chosen, turned_shots = taken_set(images, turned_count, 32)
    orientations = [ORIENTATIONS[i % len(ORIENTATIONS)] for i in range(turned_count)]
    sets = {  # name -> (the garments' indices, their files)
        "full_frame": (chosen, _write(full, f"{prefix}photos-full")),
        "margins": (chosen, _write(margins, f"{prefix}photos-margins")),
        **{
            f"taken_{seed}": (
                idx,
                _write([s.save() for s in shots], f"{prefix}photos-taken-{seed}"),
            )
            for seed, (idx, shots) in taken.items()
        },
        "upright": (turned_chosen, _write([s.save() for s in turned_shots], f"{prefix}photos-up")),
        "turned": (
            turned_chosen,
            _write(
                [s.save(o) for s, o in zip(turned_shots, orientations, strict=True)],
                f"{prefix}photos-turned",
            ),
        ),
    }
    rows: dict[str, dict[str, float]] = {}
    for model in ("mlp", "cnn"):
        row = {}
        originals = Classifier(model, device="cpu")
        for name, (idx, paths) in sets.items():
            truth = labels[idx]
            row[f"{name}_original_28x28"] = float(
                (originals.predict(images[idx]).labels == truth).mean()
            )
            row[f"{name}_trim"] = _accuracy(model, "trim", paths, truth)
            if name in ("full_frame", "margins"):
                row[f"{name}_full"] = _accuracy(model, "full", paths, truth)
        rows[model] = row
    formats = {
        name: {s: sum(p.suffix == s for p in paths) for s in (".jpg", ".webp", ".png")}
        for name, (_, paths) in sets.items()
    }
    return {
        "images": count,
        "turned_images": turned_count,
        "seeds": {"full_frame": 18, "margins": 18, "taken": [30, 31], "turned": 32},
        "formats": formats,
        "accuracy": rows,
        "targets": {
            "taken_vs_original_points": ">= -3",
            "turned_vs_upright_points": ">= -2",
            "margins_vs_original_points": ">= -2",
        },
    }
