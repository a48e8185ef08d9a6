"""Synthetic outliers for outlier exposure (Hendrycks et al. 2019): images that are not
garments, drawn from a seed, torch-free.

Training pushes the model's answer on them towards uniform, so that an image unlike
FashionMNIST gets a high energy score and abstains. Every image is made here from random
numbers; none comes from a dataset or a bundled photo, so the sets ``fashion-eval``
measures on (scikit-learn's digits, scikit-image's photos) stay unseen. The families:

- strokes: pen lines and arcs drawn at a random coarse resolution, then scaled up;
- leaves: the "dead leaves" model of natural images (overlapping discs and boxes of random
  grey, sizes by a power law);
- fractal: noise with a 1/f^a power spectrum, as natural images have;
- gratings: stripes and gradients at random angles and frequencies;
- noise: uniform pixels, smoothed at a random scale;
- inverted: training images dark on light (the wrong polarity), passed in by the caller.

All are uint8 (N, 28, 28), mostly light on dark as FashionMNIST is.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from fashion_onnx.constants import IMAGE_SIZE


def _scaled(canvas: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """The canvas resized to 28x28 (bilinear or bicubic), as uint8."""
    method = Image.Resampling.BILINEAR if rng.random() < 0.5 else Image.Resampling.BICUBIC
    return np.asarray(canvas.resize((IMAGE_SIZE, IMAGE_SIZE), method), dtype=np.uint8)


def strokes(rng: np.random.Generator) -> np.ndarray:
    """1-4 pen strokes (polylines, arcs, loops) on a coarse canvas, scaled up: the shapes
    of handwriting and symbols, not of garments."""
    side = int(rng.integers(8, 29))
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    width = int(rng.integers(1, max(2, side // 5) + 1))
    for _ in range(int(rng.integers(1, 5))):
        ink = int(rng.integers(140, 256))
        kind = rng.random()
        if kind < 0.45:
            points = [tuple(rng.uniform(0, side, 2)) for _ in range(int(rng.integers(2, 6)))]
            draw.line(points, fill=ink, width=width, joint="curve")
        elif kind < 0.85:
            x0, y0 = rng.uniform(-side / 4, side * 0.6, 2)
            w, h = rng.uniform(side / 4, side, 2)
            start = float(rng.uniform(0, 360))
            draw.arc(
                (x0, y0, x0 + w, y0 + h), start, start + float(rng.uniform(90, 360)), ink, width
            )
        else:
            x0, y0 = rng.uniform(0, side / 2, 2)
            draw.ellipse((x0, y0, x0 + side / 3, y0 + side / 3), outline=ink, width=width)
    return _scaled(canvas, rng)


def leaves(rng: np.random.Generator) -> np.ndarray:
    """The dead leaves model: discs and boxes of random grey dropped on each other, radii
    from a power law, optionally blurred (scale-invariant, as photos are)."""
    side = 56
    canvas = Image.new("L", (side, side), int(rng.integers(0, 256)))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(10, 80))):
        r = side * 0.02 / max(rng.random(), 0.02) ** 0.6  # heavy tail: few big, many small
        x, y = rng.uniform(-r, side + r, 2)
        grey = int(rng.integers(0, 256))
        if rng.random() < 0.6:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=grey)
        else:
            draw.rectangle((x - r, y - r * rng.uniform(0.3, 1), x + r, y + r), fill=grey)
    if rng.random() < 0.5:
        canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.5))))
    return _scaled(canvas, rng)


def _stretch(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Map ``values`` linearly onto a random grey range [lo, hi]."""
    lo = rng.uniform(0, 200)
    hi = lo + rng.uniform(5, 255 - lo)  # low contrast too: flat walls, sky, cloth
    span = float(values.max() - values.min()) or 1.0
    out = lo + (np.asarray(values, np.float64) - values.min()) * ((hi - lo) / span)
    return np.asarray(np.clip(out, 0, 255).round(), dtype=np.uint8)


def fractal(rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise shaped to a 1/f^a power spectrum, a in [1, 3]."""
    fy = np.fft.fftfreq(IMAGE_SIZE)[:, None]
    fx = np.fft.rfftfreq(IMAGE_SIZE)[None, :]
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1.0
    spectrum = rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)
    image = np.fft.irfft2(spectrum / radius ** rng.uniform(1.0, 3.0), s=(IMAGE_SIZE, IMAGE_SIZE))
    return _stretch(image, rng)


def gratings(rng: np.random.Generator) -> np.ndarray:
    """A sine grating, a square wave or a ramp at a random angle and frequency."""
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] / IMAGE_SIZE
    angle = rng.uniform(0, np.pi)
    t = np.cos(angle) * x + np.sin(angle) * y
    kind = rng.random()
    if kind < 0.4:
        wave = np.sin(2 * np.pi * rng.uniform(1, 8) * t + rng.uniform(0, 2 * np.pi))
    elif kind < 0.75:
        wave = np.sign(np.sin(2 * np.pi * rng.uniform(1, 6) * t + rng.uniform(0, 2 * np.pi)))
    else:
        wave = t
    return _stretch(wave + rng.normal(0, rng.uniform(0, 0.3), wave.shape), rng)


def noise(rng: np.random.Generator) -> np.ndarray:
    """Uniform pixels, blurred at a random scale (none to a few pixels)."""
    pixels = rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    image = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 3))))
    return _stretch(np.asarray(image, dtype=np.float64), rng)


_MAKERS = {
    "strokes": strokes,
    "leaves": leaves,
    "fractal": fractal,
    "gratings": gratings,
    "noise": noise,
}
FAMILIES = tuple(_MAKERS)
# Shares of the pool: shapes and photo-like textures, the two kinds users meet most.
SHARES = {"strokes": 0.35, "leaves": 0.25, "fractal": 0.15, "gratings": 0.1, "noise": 0.15}


def synthetic(count: int, seed: int) -> np.ndarray:
    """``count`` outliers from ``FAMILIES`` in the proportions of ``SHARES``, shuffled:
    the same seed gives the same images."""
    rng = np.random.default_rng(seed)
    family = rng.choice(len(FAMILIES), count, p=[SHARES[f] for f in FAMILIES])
    return np.stack([_MAKERS[FAMILIES[i]](rng) for i in family])


def inverted(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` of ``images`` (uint8 (N, 28, 28), training images only) dark on light."""
    pick = np.random.default_rng(seed).choice(len(images), count, replace=False)
    return np.asarray(255 - images[pick])


def pool(
    train_images: np.ndarray, count: int, seed: int, inverted_share: float = 0.1
) -> np.ndarray:
    """The outlier pool training draws from: synthetic images, and a share of inverted
    training images."""
    flipped = int(round(count * inverted_share))
    parts = [synthetic(count - flipped, seed), inverted(train_images, flipped, seed + 1)]
    out = np.concatenate(parts)
    return out[np.random.default_rng(seed + 2).permutation(len(out))]
