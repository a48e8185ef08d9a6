"""Photos made from real test garments, as shops and phones take them: the sets that
bench/photos.py measures the photo preparation on, that fashion-export --photo verifies a
photo model on, and that the tests use. Torch-free: numpy and Pillow.

- full frame (#18): a garment inverted to dark-on-white and enlarged to fill the picture;
- with margins (#18): the same, off-centre on a white canvas filling 35-90% of its longer
  side; both saved as JPEG, WebP or PNG;
- as taken (#30): tinted garments, tilted and off-centre, on light grey or pastel
  backgrounds with a lighting gradient, a soft shadow and sensor noise, saved as JPEG
  (quality 70-90) or PNG; ``Shot.save`` can store them turned, with the EXIF orientation
  that shows them upright.

Each is drawn from a numpy Generator, so a seed makes the same set every time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

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


# The canvases of photos as taken: portrait, square and landscape, a few hundred pixels.
CANVASES = (
    (300, 400),
    (400, 300),
    (360, 480),
    (480, 360),
    (320, 320),
    (400, 400),
    (512, 384),
    (384, 512),
    (600, 450),
    (450, 600),
)
# EXIF orientation -> the turn that makes the stored pixels from the upright picture (the
# inverse of what a viewer applies to show them upright).
STORED_TURN = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
# Phones write 1 (upright), 6 and 8 (held sideways) and 3 (upside down); the mirrored
# ones (2, 4, 5, 7) come from front cameras and editors, more rarely.
ORIENTATIONS = (6, 6, 6, 8, 8, 3, 2, 4, 5, 7)


def _hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    """One colour, HSV in [0, 1] -> float RGB in [0, 1]."""
    rgb = Image.new(
        "HSV", (1, 1), (round(hue * 255), round(saturation * 255), round(value * 255))
    ).convert("RGB")
    return np.asarray(rgb, dtype=np.float32).reshape(3) / 255


@dataclass(frozen=True)
class Shot:
    """A photo as taken, before it is saved: the upright picture and how it is saved."""

    image: Image.Image  # RGB, upright
    fmt: str  # JPEG or PNG
    quality: int  # JPEG's quality (PNG: unused)
    tilt: float  # degrees the garment was turned, counter-clockwise

    def save(self, orientation: int = 1) -> Photo:
        """Encoded; with ``orientation`` > 1 the pixels are stored turned and the EXIF
        tag says how to show them upright."""
        image, options = self.image, dict[str, object]()
        if orientation != 1:
            image = image.transpose(STORED_TURN[orientation])
            exif = Image.Exif()
            exif[0x0112] = orientation
            options["exif"] = exif.tobytes()
        if self.fmt == "JPEG":
            options["quality"] = self.quality
        buffer = io.BytesIO()
        image.save(buffer, format=self.fmt, **options)
        return Photo(buffer.getvalue(), SUFFIX[self.fmt])


def _blur(field: np.ndarray, radius: float) -> np.ndarray:
    """A float field in [0, 1] blurred (Gaussian, ``radius`` pixels), through 8 bits."""
    image = Image.fromarray(np.round(field * 255).astype(np.uint8), mode="L")
    return np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255


def shot_as_taken(pixels: np.ndarray, rng: np.random.Generator) -> Shot:
    """A test garment as a phone or a small shop photographs it.

    The 28x28 image is the garment's ink (0: none, 255: its darkest): it is enlarged to
    45-85% of the canvas's shorter side, tilted by up to 12 degrees either way and placed
    anywhere on the canvas. The background is light grey or pastel, lit unevenly (a linear
    gradient of up to 25% and a vignette). A soft shadow, offset and blurred, falls under
    the garment. The garment has a colour (any hue and saturation, light to dark, at least
    a little apart from the background's) and is either painted over the background or
    dyes it; the light falls on it too. Then sensor noise, and JPEG (quality 70-90) or PNG.
    """
    width, height = CANVASES[int(rng.integers(len(CANVASES)))]
    angle = float(rng.uniform(-12, 12))
    turn = abs(np.cos(np.radians(angle))) + abs(np.sin(np.radians(angle)))
    side = int(min(width, height) * rng.uniform(0.45, 0.85) / turn)
    ink = Image.fromarray(pixels, mode="L").resize((side, side), Image.Resampling.BICUBIC)
    ink = ink.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    left = int(rng.integers(0, width - ink.width + 1))
    top = int(rng.integers(0, height - ink.height + 1))
    alpha = np.zeros((height, width), np.float32)
    alpha[top : top + ink.height, left : left + ink.width] = np.asarray(ink) / 255

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs, ys = xs / width - 0.5, ys / height - 0.5
    gx, gy = rng.uniform(-0.25, 0.25, 2)
    light = 1 + gx * xs + gy * ys - rng.uniform(0, 0.3) * (xs**2 + ys**2)
    background = _hsv(rng.uniform(), rng.uniform(0, 0.25), rng.uniform(0.72, 0.97))
    paint = rng.uniform() < 0.5  # else dye
    while True:  # a garment colour the eye can tell from the background where it is inked
        colour = _hsv(rng.uniform(), rng.uniform(0, 1), rng.uniform(0.05, 0.95))
        inked = colour if paint else background * colour
        if np.linalg.norm(inked - background) >= 0.25:
            break

    dx, dy = (rng.uniform(-0.03, 0.07, 2) * side).astype(int)
    shifted = np.zeros_like(alpha)  # alpha moved by (dx, dy), nothing wrapping round
    shifted[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = alpha[
        max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    shadow = _blur(shifted, rng.uniform(0.02, 0.08) * side) * rng.uniform(0.1, 0.4)
    scene = background * (light * (1 - shadow))[..., None]
    a = alpha[..., None]
    if paint:  # the garment's colour over the background
        scene = scene * (1 - a) + colour * light[..., None] * a
    else:  # dye: the garment absorbs what its colour does not reflect
        scene = scene * (1 - a * (1 - colour))
    scene = scene * 255 + rng.normal(0, rng.uniform(1, 5), scene.shape)
    image = Image.fromarray(np.clip(scene, 0, 255).round().astype(np.uint8), mode="RGB")
    fmt = "JPEG" if rng.uniform() < 0.65 else "PNG"
    return Shot(image, fmt, int(rng.integers(70, 91)), angle)


def as_taken(pixels: np.ndarray, rng: np.random.Generator) -> Photo:
    """A test garment photographed as phones and shops do (``shot_as_taken``), upright."""
    return shot_as_taken(pixels, rng).save()
