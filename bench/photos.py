"""Real test images turned into product photos, as shops take them (issue #18's set).

Each garment is inverted to dark-on-white and enlarged, then either fills the picture
("full frame") or sits off-centre on a white canvas filling 35-90% of the longer side
("with margins"), saved as JPEG, WebP or PNG. A fixed seed makes the same set every time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import WORK

FORMATS = ("JPEG", "WEBP", "PNG")
SUFFIX = {"JPEG": ".jpg", "WEBP": ".webp", "PNG": ".png"}


@dataclass(frozen=True)
class Photo:
    data: bytes  # the encoded file
    suffix: str  # .jpg, .webp or .png


def _encode(image: Image.Image, fmt: str) -> Photo:
    buffer = io.BytesIO()
    options = {"JPEG": {"quality": 90}, "WEBP": {"quality": 90}, "PNG": {}}[fmt]
    image.save(buffer, format=fmt, **options)
    return Photo(buffer.getvalue(), SUFFIX[fmt])


def _garment(pixels: np.ndarray, side: int) -> Image.Image:
    """A 28x28 test image, dark garment on white, enlarged to side x side (bicubic)."""
    dark_on_white = Image.fromarray(255 - pixels, mode="L")
    return dark_on_white.resize((side, side), Image.Resampling.BICUBIC)


def full_frame(pixels: np.ndarray, rng: np.random.Generator) -> Photo:
    """The garment fills the picture: 28x28 -> 112..448 px square, in RGB."""
    side = int(rng.integers(112, 449))
    fmt = FORMATS[int(rng.integers(len(FORMATS)))]
    return _encode(_garment(pixels, side).convert("RGB"), fmt)


def with_margins(pixels: np.ndarray, rng: np.random.Generator) -> Photo:
    """The garment off-centre on a white canvas (portrait, square or landscape), its
    side 35-90% of the canvas's longer side, in RGB."""
    width, height = [(300, 400), (400, 400), (400, 300), (240, 320), (640, 480)][
        int(rng.integers(5))
    ]
    longer = max(width, height)
    side = min(int(longer * rng.uniform(0.35, 0.90)), width, height)
    canvas = Image.new("L", (width, height), 255)
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    canvas.paste(_garment(pixels, side), (left, top))
    fmt = FORMATS[int(rng.integers(len(FORMATS)))]
    return _encode(canvas.convert("RGB"), fmt)


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


def _write(photos: list[Photo], name: str) -> list[Path]:
    """The photos as files in WORK/name (rewritten each run: the set is small)."""
    folder = WORK / name
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
    """Both embedded models on the same garments: the 28x28 originals, full-frame photos
    and photos with margins, each photo set with --fit trim and --fit full."""
    from fashion_onnx.infer import Classifier

    count = 60 if quick else 2000  # 2,000: a paired difference's noise is ~0.3 points
    chosen, full, margins = photo_set(images, count)
    truth = labels[chosen]
    prefix = "quick-" if quick else ""
    sets = {
        "full_frame": _write(full, f"{prefix}photos-full"),
        "margins": _write(margins, f"{prefix}photos-margins"),
    }
    rows = {}
    for model in ("mlp", "cnn"):
        original = Classifier(model, device="cpu").predict(images[chosen]).labels
        row = {"original_28x28": float((original == truth).mean())}
        for name, paths in sets.items():
            for fit in ("trim", "full"):
                row[f"{name}_{fit}"] = _accuracy(model, fit, paths, truth)
        rows[model] = row
    formats = {s: sum(p.suffix == s for p in sets["margins"]) for s in SUFFIX.values()}
    return {"images": count, "seed": 18, "formats_with_margins": formats, "accuracy": rows}
