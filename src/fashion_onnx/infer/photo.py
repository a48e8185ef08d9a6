"""A photo as phones and shops take it -> the garment, in FashionMNIST's form (#30).

Zalando made the dataset from product photos: trimmed the edges whose colour is within 5%
of the corners', fitted the longer edge to 28 pixels, sharpened, centred, negated and
turned to grey. Photos people take add what a studio does not have: a tinted or grey
background lit unevenly, a soft shadow, sensor and JPEG noise, a garment of any colour,
tilted a little. ``prepare_photo`` takes an RGB picture of any size through:

1. a working copy, block-averaged by an integer factor to 160-319 pixels on its longer
   side;
2. the background, in colour, from the border: the four corners and six pieces of each
   side (medians), the pieces far from a plane through them dropped as garment, then a
   Coons patch between the sides, so that any lighting gradient that varies along the
   border (a slope, a vignette) is followed inside;
3. the garment: its colour distance from that local background, noise measured on the
   border; the background becomes 0 and the garment's strongest part full brightness;
4. the trim: where that distance (on a 3x3 average) is above the noise and 18% of the
   garment's strongest;
5. straightening, when the garment is tilted by more than 2.5 degrees: the angle from
   the edges' orientations (folded to a quarter turn), or, for a garment wider than tall
   (shoes), the turn that gives the smallest bounding box;
6. fit, centre and sharpen (``resample``).

Every step is arithmetic on whole arrays, reductions, sorts (medians), comparisons and
gathers, so that the same steps can be written as an ONNX graph. Each threshold was
chosen by measurement on bench/photos.py's sets (the photos as taken, with margins, full
frame), as its comment says.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.infer.resample import F32, fit_and_centre, sharpen, turn

# The working copy's longer side is at least this many pixels (an integer factor below
# twice it). On bench/photos.py's photos as taken (2,000 each, seeds 30 and 31), 128 left
# the MLP 3.4 and 3.8 points under its 28x28 originals, 160 2.9 and 2.7 (the target is 3);
# the CNN is 2.1-2.7 under with either. 160 costs about 1.5x the preparation time of 128.
WORK_SIDE = 160
RING = 2  # border rows and columns the background is read from
CORNER = 4  # corner patches, pixels a side
PIECES = 6  # robust pieces of each side: 4 left a vignette's curve in (7-31 levels off)
# A border piece further than this (RGB distance, levels) from the plane through the
# others is garment, not background. 40 and 60 measured alike; a gradient of 25% bends a
# plane by ~26 levels at most.
PIECE_TOLERANCE = 40.0
FIRST_TOLERANCE = 100.0  # the same against the pieces' median, before the first plane
NOISE_TIMES = 4.0  # the trim: above NOISE_TIMES x the border's noise (RGB distance) ...
NOISE_FLOOR = 12.0  # ... and above this many levels
TRIM_FRACTION = 0.18  # ... and above this share of the garment's strongest (0.1-0.35 tried)
LEVEL_NOISE = 1.0  # the levels: the distance minus LEVEL_NOISE x the noise ...
LEVEL_FLOOR = 0.05  # ... then what stays under this share of the strongest goes to black
MAX_TILT = 15.0  # degrees: a larger estimate is not a tilt (photos are taken upright)
MIN_TILT = 2.5  # degrees: smaller tilts cost less than the turn's resampling (1.5 tried)
WIDE = 1.15  # a garment this much wider than tall is straightened by its bounding box
TILT_STEP = 1.0  # degrees between the bounding-box method's candidate turns
SQRT3 = math.sqrt(3)


def working_copy(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (3, H, W) float32, one plane per channel: block averages of
    ``factor`` x ``factor`` pixels, factor = longer side // WORK_SIDE, at least 1 and at
    most the shorter side (the last rows and columns that do not fill a block are
    dropped). Pillow's reduce rounds each
    average to a level."""
    h, w, _ = rgb.shape
    factor = max(1, min(max(h, w) // WORK_SIDE, min(h, w)))  # a strip keeps a pixel
    if factor > 1:
        cropped = np.ascontiguousarray(rgb[: h - h % factor, : w - w % factor])
        rgb = np.asarray(Image.fromarray(cropped, mode="RGB").reduce(factor))
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=F32)


def lower_median(values: np.ndarray, axis: int) -> np.ndarray:
    """The lower median along ``axis`` (the middle value, the lower of two for an even
    count): what a TopK of half the values gives."""
    n = values.shape[axis]
    return np.asarray(np.take(np.sort(values, axis=axis), (n - 1) // 2, axis=axis))


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RGB distance of two (3, ...) planar colour arrays -> (...)."""
    d = a - b
    return np.asarray(np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]))


def _plane(points: np.ndarray, colours: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least squares of (3, n) colours on [1, u, v] at (2, n) points: the
    (3, 3) coefficients (row: channel; column: 1, u, v), from the 3x3 normal equations
    solved in closed form (Cramer's rule; a graph has no solver)."""
    basis = np.concatenate([np.ones((1, points.shape[1]), F32), points])  # (3, n)
    weighted = basis * weights
    m = (weighted @ basis.T).tolist()
    rhs = (colours @ weighted.T).tolist()  # (3 channels, 3)
    (a, b, c), (_, d, e), (_, _, f) = m
    a += 1e-6
    d += 1e-6
    f += 1e-6
    adj = (  # the adjugate of the symmetric normal matrix
        (d * f - e * e, c * e - b * f, b * e - c * d),
        (c * e - b * f, a * f - c * c, b * c - a * e),
        (b * e - c * d, b * c - a * e, a * d - b * b),
    )
    det = a * adj[0][0] + b * adj[0][1] + c * adj[0][2]
    return np.array(
        [[sum(r[k] * adj[k][j] for k in range(3)) / det for j in range(3)] for r in rhs], F32
    )


def _pieces(sides: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(2, 3, n) opposite sides' colours -> (the (2, 3, PIECES) lower medians of PIECES
    equal pieces of each, the pieces' centres (PIECES,), their length). A side shorter
    than PIECES repeats its last pixel."""
    n = sides.shape[2]
    length = max(1, n // PIECES)
    index = np.minimum(np.arange(PIECES)[:, None] * length + np.arange(length), n - 1)
    medians = lower_median(sides[:, :, index], axis=3)
    centres = (np.arange(PIECES, dtype=F32) + F32(0.5)) * F32(length) - F32(0.5)
    return medians, centres, length


def _profiles(pieces: np.ndarray, centres: np.ndarray, length: int, n: int) -> np.ndarray:
    """(2, 3, n): the (2, 3, k) pieces joined by straight lines, continued beyond the
    first and last centres along their end segments."""
    pos = np.arange(n, dtype=F32)
    j = np.clip(np.floor((pos - centres[0]) / F32(length)), 0, len(centres) - 2).astype(np.intp)
    frac = (pos - centres[j]) / F32(length)
    start = pieces[:, :, j]
    return np.asarray(start + frac * (pieces[:, :, j + 1] - start), dtype=F32)


def _border(x: np.ndarray) -> np.ndarray:
    """(3, H, W) -> (3, n): the RING outer rows and columns, flattened."""
    return np.concatenate(
        [
            x[:, :RING].reshape(3, -1),
            x[:, -RING:].reshape(3, -1),
            x[:, :, :RING].reshape(3, -1),
            x[:, :, -RING:].reshape(3, -1),
        ],
        axis=1,
    )


def background(x: np.ndarray) -> tuple[np.ndarray, float]:
    """(3, H, W) working copy -> (its background (3, H, W), the noise: a robust standard
    deviation of one channel on the border)."""
    _, height, width = x.shape
    # (2, 3, W): the top and the bottom RING rows' means; (2, 3, H): the left and right
    across = np.stack([x[:, :RING].sum(axis=1), x[:, -RING:].sum(axis=1)]) * F32(1 / RING)
    down = np.stack([x[:, :, :RING].sum(axis=2), x[:, :, -RING:].sum(axis=2)]) * F32(1 / RING)
    across_pieces, across_centres, across_length = _pieces(across)
    down_pieces, down_centres, down_length = _pieces(down)
    q = min(CORNER, height, width)
    patches = np.stack(
        [x[:, :q, :q], x[:, :q, -q:], x[:, -q:, :q], x[:, -q:, -q:]], axis=1
    ).reshape(3, 4, -1)
    # every piece's colour and place (u across, v down, both in [0, 1]): top, bottom,
    # left and right pieces, then the four corners
    colours = np.concatenate(
        [
            across_pieces.transpose(1, 0, 2).reshape(3, -1),
            down_pieces.transpose(1, 0, 2).reshape(3, -1),
            lower_median(patches, axis=2),
        ],
        axis=1,
    )
    u = across_centres / F32(max(width - 1, 1))
    v = down_centres / F32(max(height - 1, 1))
    zeros, ones = np.zeros_like(u), np.ones_like(u)
    uv = np.array(
        [
            np.concatenate([u, u, 0 * v, 0 * v + 1, [0, 1, 0, 1]]),
            np.concatenate([zeros, ones, v, v, [0, 0, 1, 1]]),
        ],
        dtype=F32,
    )
    median = lower_median(colours, axis=1)[:, None]
    weights = (distance(colours, median) <= FIRST_TOLERANCE).astype(F32)
    for _ in range(2):
        if weights.sum() < 3:
            weights = np.ones_like(weights)
        coef = _plane(uv, colours, weights)
        fitted = coef[:, :1] + coef[:, 1:2] * uv[0] + coef[:, 2:] * uv[1]
        weights = (distance(colours, fitted) <= PIECE_TOLERANCE).astype(F32)
    clean = np.where(weights > 0, colours, fitted).astype(F32)
    k_across, k_down = len(across_centres), len(down_centres)
    top, bottom = _profiles(
        clean[:, : 2 * k_across].reshape(3, 2, k_across).transpose(1, 0, 2),
        across_centres,
        across_length,
        width,
    )
    left, right = _profiles(
        clean[:, 2 * k_across : -4].reshape(3, 2, k_down).transpose(1, 0, 2),
        down_centres,
        down_length,
        height,
    )
    tl, tr, bl, br = (clean[:, i : i + 1] for i in range(clean.shape[1] - 4, clean.shape[1]))
    across_at = np.arange(width, dtype=F32) / F32(max(width - 1, 1))  # u of every column
    down_at = np.arange(height, dtype=F32) / F32(max(height - 1, 1))  # v of every row
    # Coons: (1-v) top + v bottom + (1-u) left + u right - the corners' bilinear blend,
    # grouped as a row part and a column part, each blended along the other axis
    upper = top - (tl + across_at * (tr - tl))  # (3, W)
    lower = bottom - (bl + across_at * (br - bl))
    patch = upper[:, None, :] + down_at[None, :, None] * (lower - upper)[:, None, :]
    patch += left[:, :, None] + across_at[None, None, :] * (right - left)[:, :, None]
    residual = distance(_border(x), _border(patch))
    noise = float(np.partition(residual, (residual.size - 1) // 2)[(residual.size - 1) // 2])
    return patch, noise * 1.4826 / SQRT3


def _sum3(x: np.ndarray, axis: int) -> np.ndarray:
    """Each value plus its neighbours along ``axis`` (-1 or -2), the edge values
    repeated beyond the ends: (x[i] + x[i-1]) + x[i+1], as a graph's Pad(edge) and
    Slices give it."""
    if x.shape[axis] < 2:
        return x * F32(3)
    out = np.empty_like(x)
    a, o = np.swapaxes(x, axis, -1), np.swapaxes(out, axis, -1)  # views: sum along -1
    np.add(a[..., 1:-1], a[..., :-2], out=o[..., 1:-1])
    o[..., 1:-1] += a[..., 2:]
    o[..., :1] = (a[..., :1] + a[..., :1]) + a[..., 1:2]
    o[..., -1:] = (a[..., -1:] + a[..., -2:-1]) + a[..., -1:]
    return out


def _box3(x: np.ndarray) -> np.ndarray:
    """3x3 mean over the last two axes, edges repeated."""
    total = _sum3(_sum3(x, -2), -1)
    total *= F32(1 / 9)
    return total


Box = tuple[int, int, int, int]  # top, bottom, left, right (bottom and right exclusive)


def bounds(mask: np.ndarray) -> Box | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def garment(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(3, H, W) working copy -> (levels (H, W) in [0, 1]: the garment's strength, the
    background 0; the trim's mask (H, W)), or None when nothing stands out."""
    bg, noise = background(x)
    far = distance(x, bg)
    strongest = float(_box3(far).max())
    floor = max(NOISE_TIMES * noise * SQRT3, NOISE_FLOOR)
    if strongest <= floor:
        return None
    offset = LEVEL_NOISE * noise * SQRT3
    levels = np.clip((far - F32(offset)) * F32(1 / max(strongest - offset, 1e-3)), 0, 1)
    levels = np.clip((levels - F32(LEVEL_FLOOR)) * F32(1 / (1 - LEVEL_FLOOR)), 0, 1)
    smooth = distance(_box3(x), bg)
    mask = smooth > max(floor, TRIM_FRACTION * strongest)
    return levels.astype(F32), mask


def _tilt_by_edges(levels: np.ndarray) -> float:
    """The dominant edge orientation folded to a quarter turn: a quarter of the angle of
    the sum of (gx + i gy)^4 / |g|^2 (Sobel gradients, zero beyond the edges)."""
    height, width = levels.shape
    p = np.zeros((height + 2, width + 2), F32)
    p[1:-1, 1:-1] = levels
    # separable: each column smoothed down (1, 2, 1) then differenced across, and each
    # row smoothed across then differenced down, the same sums as the 3x3 kernels
    down = (p[:-2] + 2 * p[1:-1]) + p[2:]
    gx = down[:, 2:] - down[:, :-2]
    across = (p[:, :-2] + 2 * p[:, 1:-1]) + p[:, 2:]
    gy = across[2:] - across[:-2]
    gx2, gy2 = gx * gx, gy * gy
    mag2 = gx2 + gy2
    inv = np.divide(F32(1), mag2, out=np.zeros_like(mag2), where=mag2 > 0)
    real = ((gx2 * gx2 + gy2 * gy2) - 6 * (gx2 * gy2)) * inv
    imag = 4 * ((gx * gy) * (gx2 - gy2)) * inv
    return math.degrees(math.atan2(float(imag.sum()), float(real.sum()))) / 4


def tilt_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bounding-box method's candidate turns (degrees, float32) and their cosines and
    sines (float32), the graph's constants too."""
    angles = np.arange(-MAX_TILT, MAX_TILT + TILT_STEP / 2, TILT_STEP, dtype=F32)
    radians = angles * F32(math.pi / 180)
    return angles, np.cos(radians), np.sin(radians)


def _row_ends(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys): the first and last pixel of each row of the mask that has any; they hold
    the mask's extremes in every direction."""
    rows = np.flatnonzero(mask.any(axis=1))
    left = mask[rows].argmax(axis=1)
    right = mask.shape[1] - 1 - mask[rows, ::-1].argmax(axis=1)
    return np.concatenate([left, right]).astype(F32), np.concatenate([rows, rows]).astype(F32)


def _tilt_by_box(mask: np.ndarray) -> float:
    """The turn (within MAX_TILT, in TILT_STEP steps) whose bounding box of the mask is
    smallest (the first such, from -MAX_TILT)."""
    xs, ys = _row_ends(mask)
    xs, ys = xs - xs.mean(), ys - ys.mean()
    angles, cos, sin = tilt_table()
    along = xs[None] * cos[:, None] + ys[None] * sin[:, None]
    across = ys[None] * cos[:, None] - xs[None] * sin[:, None]
    area = (np.ptp(along, axis=1) + 1) * (np.ptp(across, axis=1) + 1)
    return float(angles[int(np.argmin(area))])


def tilt(levels: np.ndarray, mask: np.ndarray, box: Box) -> float:
    """Degrees to turn the garment by (counter-clockwise on screen) to stand it upright;
    0 when the estimate is under MIN_TILT or over MAX_TILT."""
    top, bottom, left, right = box
    if right - left > WIDE * (bottom - top):
        angle = _tilt_by_box(mask)
    else:
        angle = _tilt_by_edges(levels)
    return angle if MIN_TILT < abs(angle) <= MAX_TILT else 0.0


def straighten(levels: np.ndarray, mask: np.ndarray, box: Box, angle: float) -> np.ndarray:
    """The garment turned upright by ``angle`` about its box's centre: the levels sampled
    on a grid that spans the turned mask (from its row ends). A turn by 0 gives the box's
    crop itself."""
    top, bottom, left, right = box
    # a whole pixel, so that a turn by 0 samples the pixels themselves: the box's crop
    cy, cx = (top + bottom - 1) // 2, (left + right - 1) // 2
    xs, ys = _row_ends(mask)
    t = F32(angle) * F32(math.pi / 180)
    cos, sin = np.cos(t), np.sin(t)
    dx, dy = xs - F32(cx), ys - F32(cy)
    along = dx * cos + dy * sin  # the turned frame's x
    down = dy * cos - dx * sin  # and its y
    x0, y0 = math.floor(float(along.min())), math.floor(float(down.min()))
    width = math.ceil(float(along.max())) - x0 + 1
    height = math.ceil(float(down.max())) - y0 + 1
    return turn(levels, angle, (cy, cx), (y0, x0), (height, width))


def prepare_photo(rgb: np.ndarray) -> np.ndarray:
    """A uint8 (h, w, 3) RGB photo (or (h, w) grey) -> uint8 (28, 28), light garment on
    black, as the dataset was made. A picture where nothing stands out from its border
    becomes black."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    found = garment(working_copy(rgb))
    box = None if found is None else bounds(found[1])
    if found is None or box is None:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    levels, mask = found
    angle = tilt(levels, mask, box)
    if angle:
        crop = straighten(levels, mask, box, angle)
    else:
        top, bottom, left, right = box
        crop = levels[top:bottom, left:right]
    fitted = sharpen(fit_and_centre(crop) * F32(255))
    return np.clip(np.round(fitted), 0, 255).astype(np.uint8)
