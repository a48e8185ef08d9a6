"""Images a FashionMNIST model has never seen, built offline, as uint8 (N, 28, 28).

- digits: scikit-learn's bundled ``load_digits`` (1,797 8x8 digits, light on dark, as
  FashionMNIST), upscaled to 28x28;
- patches: random square crops of the natural photos bundled with scikit-image
  (camera, astronaut, coffee, ...), in grey, resized to 28x28;
- noise: uniform random pixels;
- inverted: real FashionMNIST test images with the wrong polarity (dark on light).

None of these is ever used to train or calibrate. scikit-learn and scikit-image come with
the [test] extra; the functions import them inside.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.errors import DataNotFoundError

OOD_SETS: tuple[str, ...] = ("digits", "patches", "noise", "inverted")
# scikit-image's bundled photos (no download): people, animals, objects, textures.
PHOTOS = (
    "camera",
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "moon",
    "grass",
    "gravel",
    "brick",
    "clock",
    "coins",
    "horse",
    "page",
    "text",
)
PATCHES_PER_PHOTO = 150
SEED = 24


def _resize(pixels: np.ndarray) -> np.ndarray:
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    return np.asarray(image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR))


def digits() -> np.ndarray:
    """scikit-learn's 1,797 handwritten digits (0..16 grey levels), upscaled to 28x28."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DataNotFoundError("the digits set needs scikit-learn (the [test] extra)") from exc
    images = load_digits().images  # (1797, 8, 8), 0..16, light digit on dark
    return np.stack([_resize((im * 255 / 16).round().astype(np.uint8)) for im in images])


def patches(per_photo: int = PATCHES_PER_PHOTO, seed: int = SEED) -> np.ndarray:
    """Square crops (28 px up to half the photo's side) of scikit-image's bundled photos,
    in grey, resized to 28x28: ``per_photo`` from each of ``PHOTOS``."""
    try:
        import skimage.data
        from skimage.color import rgb2gray
    except ImportError as exc:
        raise DataNotFoundError("the patches set needs scikit-image (the [test] extra)") from exc
    rng = np.random.default_rng(seed)
    out = []
    for name in PHOTOS:
        photo = getattr(skimage.data, name)()
        if photo.ndim == 3:
            photo = rgb2gray(photo[..., :3]) * 255
        if photo.dtype != np.uint8:  # grey floats in 0..255, or a bool mask (horse)
            photo = np.asarray(photo, dtype=np.float64)
            photo = (photo * (255 / max(photo.max(), 1e-9))).round().astype(np.uint8)
        for _ in range(per_photo):
            side = int(rng.integers(IMAGE_SIZE, min(photo.shape) // 2))
            y = int(rng.integers(0, photo.shape[0] - side))
            x = int(rng.integers(0, photo.shape[1] - side))
            out.append(_resize(photo[y : y + side, x : x + side]))
    return np.stack(out)


def noise(count: int = 2000, seed: int = SEED) -> np.ndarray:
    """Uniform random pixels."""
    return np.random.default_rng(seed).integers(0, 256, (count, IMAGE_SIZE, IMAGE_SIZE), np.uint8)


def inverted(test_images: np.ndarray, count: int = 2000) -> np.ndarray:
    """The first ``count`` test images, dark garment on light: the wrong polarity (floats
    in [0, 1] stay floats)."""
    first = test_images[:count]
    return np.asarray((1 if first.dtype.kind == "f" else 255) - first)


def build(name: str, test_images: np.ndarray) -> np.ndarray:
    """One of ``OOD_SETS`` by name.

    Raises:
        DataNotFoundError: its library is not installed.
        KeyError: not one of ``OOD_SETS``.
    """
    if name == "inverted":
        return inverted(test_images)
    makers = {"digits": digits, "patches": patches, "noise": noise}
    return makers[name]()
