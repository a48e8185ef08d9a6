"""The photo preparation as an ONNX graph (#33): ``fashion_onnx.infer.photo`` and
``prepare``'s 28x28 path, step for step, from the same constants.

``preparation_graph()`` takes ``image``, uint8 [height, width, 3] RGB of any size, and
gives ``prepared``, uint8 [28, 28]: what the model sees. Standard operators at opset 18
only (no custom ops, no linear-algebra solver: the plane's 3x3 normal equations are
solved by Cramer's rule), so that onnxruntime in Python, Node and the browser, and
``onnx.reference``, run it. ``photo_model()`` joins it to a plain model.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.export.graph_builder import Builder, Value
from fashion_onnx.infer import photo, resample

OPSET = 18
PILLOW_REDUCE_BITS = 24  # Pillow's reduce: (sum + n // 2) * trunc(2^32 / (256 n)) >> 24


def _dataset_way(g: Builder, image: Value) -> Value:
    """A 28x28 picture: Pillow's luma, inverted when the border is light (uint8)."""
    wide = g.op("Cast", image, to=TensorProto.INT64)
    r, gr, b = (g.op("Gather", wide, g.i64(c), axis=2) for c in range(3))
    mixed = g.op(
        "Add",
        g.op("Add", g.op("Mul", r, g.i64(19595)), g.op("Mul", gr, g.i64(38470))),
        g.op("Add", g.op("Mul", b, g.i64(7471)), g.i64(0x8000)),
    )
    gray = g.op("Div", mixed, g.i64(1 << 16))
    edges = [
        g.slice(gray, [0], [1], [0]),
        g.slice(gray, [-1], [IMAGE_SIZE], [0]),
        g.slice(gray, [1, 0], [-1, 1], [0, 1]),
        g.slice(gray, [1, -1], [-1, IMAGE_SIZE], [0, 1]),
    ]
    border = g.op(
        "Add",
        g.op(
            "Add", g.op("ReduceSum", edges[0], keepdims=0), g.op("ReduceSum", edges[1], keepdims=0)
        ),
        g.op(
            "Add", g.op("ReduceSum", edges[2], keepdims=0), g.op("ReduceSum", edges[3], keepdims=0)
        ),
    )
    count = 2 * IMAGE_SIZE + 2 * (IMAGE_SIZE - 2)
    light = g.op("Greater", g.f32(border), g.const(count * 255 / 2))
    turned = g.op("Where", light, g.op("Sub", g.i64(255), gray), gray)
    return g.op("Cast", turned, to=TensorProto.UINT8)


def _working_copy(g: Builder, image: Value) -> tuple[Value, Value, Value]:
    """(3, H, W) float32 block averages, rounded as Pillow's reduce rounds; H, W."""
    h, w = g.shape_of(image, 0), g.shape_of(image, 1)
    factor = g.op(
        "Max",
        g.i64(1),
        g.op("Min", g.op("Div", g.op("Max", h, w), g.i64(photo.WORK_SIDE)), g.op("Min", h, w)),
    )
    height, width = g.op("Div", h, factor), g.op("Div", w, factor)
    crop = g.slice(image, [0, 0], [g.op("Mul", height, factor), g.op("Mul", width, factor)], [0, 1])
    blocks = g.op(
        "Reshape",
        g.op("Cast", crop, to=TensorProto.INT64),
        g.as_1d(height, factor, width, factor, g.i64(3)),
    )
    sums = g.op("ReduceSum", blocks, g.i64([1, 3]), keepdims=0)  # (H, W, 3)
    n = g.op("Mul", factor, factor)
    multiplier = g.i64_of(
        g.op("Floor", g.op("Div", g.const(2.0**32), g.f32(g.op("Mul", n, g.i64(256)))))
    )
    rounded = g.op(
        "Div",
        g.op("Mul", g.op("Add", sums, g.op("Div", n, g.i64(2))), multiplier),
        g.i64(1 << PILLOW_REDUCE_BITS),
    )
    return g.op("Transpose", g.f32(rounded), perm=[2, 0, 1]), height, width


def _pieces(g: Builder, sides: Value, n: Value) -> tuple[Value, Value, Value]:
    """(2, 3, n) -> (2, 3, PIECES) lower medians of PIECES pieces, their centres, length."""
    length = g.op("Max", g.i64(1), g.op("Div", n, g.i64(photo.PIECES)))
    index = g.op(
        "Add",
        g.op("Mul", g.i64(np.arange(photo.PIECES)[:, None]), length),
        g.op("Range", g.i64(0), length, g.i64(1)),
    )
    index = g.op("Min", index, g.op("Sub", n, g.i64(1)))  # (PIECES, length)
    gathered = g.op("Gather", sides, index, axis=2)  # (2, 3, PIECES, length)
    medians = g.op("Squeeze", g.lower_median(gathered, 3), g.i64([3]))
    centres = g.op(
        "Sub", g.op("Mul", g.const(np.arange(photo.PIECES) + 0.5), g.f32(length)), g.const(0.5)
    )
    return medians, centres, g.f32(length)


def _plane(g: Builder, uv: Value, colours: Value, weights: Value) -> Value:
    """(3 channels, 3) weighted least-squares coefficients on [1, u, v], Cramer's rule."""
    ones = g.op(
        "ConstantOfShape",
        g.as_1d(g.i64(1), g.shape_of(uv, 1)),
        value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0]),
    )
    basis = g.op("Concat", ones, uv, axis=0)  # (3, n)
    weighted = g.op("Mul", basis, weights)
    m = g.op("MatMul", weighted, g.op("Transpose", basis))  # (3, 3)
    rhs = g.op("MatMul", colours, g.op("Transpose", weighted))  # (3 channels, 3)

    def at(i: int, j: int) -> Value:
        return g.op("Gather", g.op("Gather", m, g.i64(i), axis=0), g.i64(j), axis=0)

    eps = g.const(1e-6)
    a, b, c = g.op("Add", at(0, 0), eps), at(0, 1), at(0, 2)
    d, e, f = g.op("Add", at(1, 1), eps), at(1, 2), g.op("Add", at(2, 2), eps)

    def minus(p: Value, q: Value, r: Value, s: Value) -> Value:  # p q - r s
        return g.op("Sub", g.op("Mul", p, q), g.op("Mul", r, s))

    adj = [
        [minus(d, f, e, e), minus(c, e, b, f), minus(b, e, c, d)],
        [minus(c, e, b, f), minus(a, f, c, c), minus(b, c, a, e)],
        [minus(b, e, c, d), minus(b, c, a, e), minus(a, d, b, b)],
    ]
    det = g.op(
        "Add",
        g.op("Add", g.op("Mul", a, adj[0][0]), g.op("Mul", b, adj[0][1])),
        g.op("Mul", c, adj[0][2]),
    )
    rows = [
        g.op(
            "Unsqueeze",
            g.op("Concat", *[g.op("Unsqueeze", adj[k][j], g.i64([0])) for j in range(3)], axis=0),
            g.i64([0]),
        )
        for k in range(3)
    ]
    adjugate = g.op("Concat", *rows, axis=0)  # (3, 3)
    return g.op("Div", g.op("MatMul", rhs, adjugate), det)


def _profiles(g: Builder, pieces: Value, centres: Value, length: Value, n: Value) -> Value:
    """(2, 3, n): the pieces joined by straight lines, continued at both ends."""
    pos = g.f32(g.op("Range", g.i64(0), n, g.i64(1)))
    first = g.scalar(centres, 0)
    j = g.op(
        "Clip",
        g.op("Floor", g.op("Div", g.op("Sub", pos, first), length)),
        g.const(0.0),
        g.const(float(photo.PIECES - 2)),
    )
    j = g.i64_of(j)
    frac = g.op("Div", g.op("Sub", pos, g.op("Gather", centres, j, axis=0)), length)
    start = g.op("Gather", pieces, j, axis=2)
    step = g.op("Sub", g.op("Gather", pieces, g.op("Add", j, g.i64(1)), axis=2), start)
    return g.op("Add", start, g.op("Mul", frac, step))


def _border(g: Builder, x: Value) -> Value:
    ring = photo.RING
    parts = [
        g.slice(x, [0], [ring], [1]),
        g.slice(x, [-ring], [1 << 62], [1]),
        g.slice(x, [0], [ring], [2]),
        g.slice(x, [-ring], [1 << 62], [2]),
    ]
    return g.op("Concat", *[g.op("Reshape", p, g.i64([3, -1])) for p in parts], axis=1)


def _background(g: Builder, x: Value, height: Value, width: Value) -> tuple[Value, Value]:
    """The Coons-patch background (3, H, W) and the border's noise (0-D)."""
    ring = photo.RING
    half = g.const(1.0 / ring)
    across = g.op(
        "Mul",
        g.op(
            "Concat",
            g.op("ReduceSum", g.slice(x, [0], [ring], [1]), g.i64([1])),
            g.op("ReduceSum", g.slice(x, [-ring], [1 << 62], [1]), g.i64([1])),
            axis=1,
        ),
        half,
    )  # (3, 2, W)
    down = g.op(
        "Mul",
        g.op(
            "Concat",
            g.op("ReduceSum", g.slice(x, [0], [ring], [2]), g.i64([2])),
            g.op("ReduceSum", g.slice(x, [-ring], [1 << 62], [2]), g.i64([2])),
            axis=2,
        ),
        half,
    )  # (3, H, 2)
    across = g.op("Transpose", across, perm=[1, 0, 2])  # (2, 3, W)
    down = g.op("Transpose", down, perm=[2, 0, 1])  # (2, 3, H)
    across_pieces, across_centres, across_length = _pieces(g, across, width)
    down_pieces, down_centres, down_length = _pieces(g, down, height)
    q = g.op("Min", g.i64(photo.CORNER), g.op("Min", height, width))
    neg_q = g.op("Neg", q)
    big = 1 << 62
    patches = [
        g.slice(x, [0, 0], [q, q], [1, 2]),
        g.slice(x, [0, neg_q], [q, big], [1, 2]),
        g.slice(x, [neg_q, 0], [big, q], [1, 2]),
        g.slice(x, [neg_q, neg_q], [big, big], [1, 2]),
    ]
    corners = g.op("Concat", *[g.op("Reshape", p, g.i64([3, 1, -1])) for p in patches], axis=1)
    corner_colours = g.op("Squeeze", g.lower_median(corners, 2), g.i64([2]))  # (3, 4)
    k = photo.PIECES
    colours = g.op(
        "Concat",
        g.op("Reshape", g.op("Transpose", across_pieces, perm=[1, 0, 2]), g.i64([3, 2 * k])),
        g.op("Reshape", g.op("Transpose", down_pieces, perm=[1, 0, 2]), g.i64([3, 2 * k])),
        corner_colours,
        axis=1,
    )  # (3, 4k + 4)
    u = g.op("Div", across_centres, g.f32(g.op("Max", g.op("Sub", width, g.i64(1)), g.i64(1))))
    v = g.op("Div", down_centres, g.f32(g.op("Max", g.op("Sub", height, g.i64(1)), g.i64(1))))
    zeros, ones = g.const(np.zeros(k)), g.const(np.ones(k))
    uv = g.op(
        "Concat",
        g.op(
            "Unsqueeze",
            g.op("Concat", u, u, zeros, ones, g.const([0, 1, 0, 1]), axis=0),
            g.i64([0]),
        ),
        g.op(
            "Unsqueeze",
            g.op("Concat", zeros, ones, v, v, g.const([0, 0, 1, 1]), axis=0),
            g.i64([0]),
        ),
        axis=0,
    )  # (2, 4k + 4)
    median = g.lower_median(colours, 1)  # (3, 1)
    weights = g.f32(
        g.op("LessOrEqual", g.distance(colours, median), g.const(photo.FIRST_TOLERANCE))
    )
    fitted = None
    for _ in range(2):
        few = g.op("Less", g.op("ReduceSum", weights, keepdims=0), g.const(3.0))
        weights = g.op(
            "Where", few, g.op("Add", g.op("Mul", weights, g.const(0.0)), g.const(1.0)), weights
        )
        coef = _plane(g, uv, colours, weights)  # (3, 3)
        fitted = g.op("MatMul", coef, g.op("Concat", g.const(np.ones((1, 4 * k + 4))), uv, axis=0))
        weights = g.f32(
            g.op("LessOrEqual", g.distance(colours, fitted), g.const(photo.PIECE_TOLERANCE))
        )
    assert fitted is not None
    clean = g.op("Where", g.op("Greater", weights, g.const(0.0)), colours, fitted)

    def part(start: int, end: int) -> Value:
        return g.slice(clean, [start], [end], [1])

    pair_a = g.op("Transpose", g.op("Reshape", part(0, 2 * k), g.i64([3, 2, k])), perm=[1, 0, 2])
    pair_d = g.op(
        "Transpose", g.op("Reshape", part(2 * k, 4 * k), g.i64([3, 2, k])), perm=[1, 0, 2]
    )
    profile_a = _profiles(g, pair_a, across_centres, across_length, width)  # (2, 3, W)
    profile_d = _profiles(g, pair_d, down_centres, down_length, height)  # (2, 3, H)
    top, bottom = (
        g.op("Squeeze", g.slice(profile_a, [i], [i + 1], [0]), g.i64([0])) for i in (0, 1)
    )
    left, right = (
        g.op("Squeeze", g.slice(profile_d, [i], [i + 1], [0]), g.i64([0])) for i in (0, 1)
    )
    tl, tr, bl, br = (part(4 * k + i, 4 * k + i + 1) for i in range(4))  # (3, 1)
    uu = g.op(
        "Div",
        g.f32(g.op("Range", g.i64(0), width, g.i64(1))),
        g.f32(g.op("Max", g.op("Sub", width, g.i64(1)), g.i64(1))),
    )
    vv = g.op(
        "Div",
        g.f32(g.op("Range", g.i64(0), height, g.i64(1))),
        g.f32(g.op("Max", g.op("Sub", height, g.i64(1)), g.i64(1))),
    )
    upper = g.op("Sub", top, g.op("Add", tl, g.op("Mul", uu, g.op("Sub", tr, tl))))  # (3, W)
    lower = g.op("Sub", bottom, g.op("Add", bl, g.op("Mul", uu, g.op("Sub", br, bl))))
    v3 = g.op("Reshape", vv, g.i64([1, -1, 1]))
    patch = g.op(
        "Add",
        g.op("Unsqueeze", upper, g.i64([1])),
        g.op("Mul", v3, g.op("Unsqueeze", g.op("Sub", lower, upper), g.i64([1]))),
    )
    side = g.op(
        "Add",
        g.op("Unsqueeze", left, g.i64([2])),
        g.op(
            "Mul",
            g.op("Reshape", uu, g.i64([1, 1, -1])),
            g.op("Unsqueeze", g.op("Sub", right, left), g.i64([2])),
        ),
    )
    patch = g.op("Add", patch, side)
    residual = g.distance(_border(g, x), _border(g, patch))  # (n,)
    noise = g.op(
        "Mul",
        g.op("Squeeze", g.lower_median(residual, 0), g.i64([0])),
        g.const(1.4826 / math.sqrt(3)),
    )
    return patch, noise


def _box3(g: Builder, x: Value, axes: tuple[int, int]) -> Value:
    """3x3 mean over ``axes`` (the last two), edges repeated."""
    out = x
    for axis in axes:
        first = g.slice(out, [0], [1], [axis])
        last = g.slice(out, [-1], [1 << 62], [axis])
        padded = g.op("Concat", first, out, last, axis=axis)
        a = g.slice(padded, [0], [-2], [axis])
        b = g.slice(padded, [1], [-1], [axis])
        c = g.slice(padded, [2], [1 << 62], [axis])
        out = g.op("Add", g.op("Add", b, a), c)
    return g.op("Mul", out, g.const(1 / 9))


def _first_last(g: Builder, any_: Value) -> tuple[Value, Value]:
    """The first index where a bool vector is true, and one past the last."""
    as_int = g.op("Cast", any_, to=TensorProto.INT32)
    first = g.op("ArgMax", as_int, axis=0, keepdims=0)
    last = g.op("ArgMax", as_int, axis=0, keepdims=0, select_last_index=1)
    return first, g.op("Add", last, g.i64(1))


def _row_ends(g: Builder, mask: Value) -> tuple[Value, Value]:
    """(xs, ys) float32: the first and last pixel of each row of the mask that has any."""
    rows_any = g.op(
        "Cast",
        g.op("ReduceMax", g.op("Cast", mask, to=TensorProto.INT32), g.i64([1]), keepdims=0),
        to=TensorProto.BOOL,
    )
    as_int = g.op("Cast", mask, to=TensorProto.INT32)
    left = g.op("ArgMax", as_int, axis=1, keepdims=0)
    right = g.op("ArgMax", as_int, axis=1, keepdims=0, select_last_index=1)
    rows = g.op("Range", g.i64(0), g.shape_of(mask, 0), g.i64(1))
    xs = g.op(
        "Concat",
        g.op("Compress", left, rows_any, axis=0),
        g.op("Compress", right, rows_any, axis=0),
        axis=0,
    )
    kept = g.op("Compress", rows, rows_any, axis=0)
    return g.f32(xs), g.f32(g.op("Concat", kept, kept, axis=0))


def _atan2(g: Builder, y: Value, x: Value) -> Value:
    """atan2 from Atan and Where (ONNX has no Atan2)."""
    safe_x = g.op("Where", g.op("Equal", x, g.const(0.0)), g.const(1e-30), x)
    base = g.op("Atan", g.op("Div", y, safe_x))
    negative_x = g.op("Less", x, g.const(0.0))
    up = g.op("Where", g.op("GreaterOrEqual", y, g.const(0.0)), g.const(math.pi), g.const(-math.pi))
    return g.op("Add", base, g.op("Where", negative_x, up, g.const(0.0)))


def _tilt(g: Builder, levels: Value, mask: Value, box: tuple[Value, Value, Value, Value]) -> Value:
    """Degrees to turn by (0-D float32), as ``photo.tilt``."""
    top, bottom, left, right = box
    # by edges: Sobel on the levels, zero beyond
    p = g.op("Pad", levels, g.i64([1, 1, 1, 1]))

    def sl(dy: int, dx: int) -> Value:
        return g.slice(
            p, [dy, dx], [-2 + dy if dy < 2 else 1 << 62, -2 + dx if dx < 2 else 1 << 62], [0, 1]
        )

    two = g.const(2.0)
    gx = g.op(
        "Sub",
        g.op("Add", g.op("Add", sl(0, 2), g.op("Mul", two, sl(1, 2))), sl(2, 2)),
        g.op("Add", g.op("Add", sl(0, 0), g.op("Mul", two, sl(1, 0))), sl(2, 0)),
    )
    gy = g.op(
        "Sub",
        g.op("Add", g.op("Add", sl(2, 0), g.op("Mul", two, sl(2, 1))), sl(2, 2)),
        g.op("Add", g.op("Add", sl(0, 0), g.op("Mul", two, sl(0, 1))), sl(0, 2)),
    )
    gx2, gy2 = g.op("Mul", gx, gx), g.op("Mul", gy, gy)
    mag2 = g.op("Add", gx2, gy2)
    positive = g.op("Greater", mag2, g.const(0.0))
    inv = g.op(
        "Where",
        positive,
        g.op("Div", g.const(1.0), g.op("Where", positive, mag2, g.const(1.0))),
        g.const(0.0),
    )
    real = g.op(
        "Sub",
        g.op("Add", g.op("Mul", gx2, gx2), g.op("Mul", gy2, gy2)),
        g.op("Mul", g.const(6.0), g.op("Mul", gx2, gy2)),
    )
    imag = g.op("Mul", g.const(4.0), g.op("Mul", g.op("Mul", gx, gy), g.op("Sub", gx2, gy2)))
    real_sum = g.op("ReduceSum", g.op("Mul", real, inv), keepdims=0)
    imag_sum = g.op("ReduceSum", g.op("Mul", imag, inv), keepdims=0)
    by_edges = g.op("Mul", _atan2(g, imag_sum, real_sum), g.const(180 / math.pi / 4))
    # by the smallest bounding box of the row ends
    xs, ys = _row_ends(g, mask)
    xs = g.op("Sub", xs, g.op("ReduceMean", xs, keepdims=1))
    ys = g.op("Sub", ys, g.op("ReduceMean", ys, keepdims=1))
    angles, cos, sin = photo.tilt_table()
    cos_c, sin_c = g.const(cos[:, None]), g.const(sin[:, None])
    along = g.op("Add", g.op("Mul", xs, cos_c), g.op("Mul", ys, sin_c))  # (A, n)
    across = g.op("Sub", g.op("Mul", ys, cos_c), g.op("Mul", xs, sin_c))

    def extent(t: Value) -> Value:
        return g.op(
            "Add",
            g.op(
                "Sub",
                g.op("ReduceMax", t, g.i64([1]), keepdims=0),
                g.op("ReduceMin", t, g.i64([1]), keepdims=0),
            ),
            g.const(1.0),
        )

    area = g.op("Mul", extent(along), extent(across))
    by_box = g.op("Gather", g.const(angles), g.op("ArgMin", area, axis=0, keepdims=0), axis=0)
    wide = g.op(
        "Greater",
        g.f32(g.op("Sub", right, left)),
        g.op("Mul", g.const(photo.WIDE), g.f32(g.op("Sub", bottom, top))),
    )
    angle = g.op("Where", wide, by_box, by_edges)
    magnitude = g.op("Abs", angle)
    valid = g.op(
        "And",
        g.op("Greater", magnitude, g.const(photo.MIN_TILT)),
        g.op("LessOrEqual", magnitude, g.const(photo.MAX_TILT)),
    )
    return g.op("Where", valid, angle, g.const(0.0))


def _straighten(
    g: Builder, levels: Value, mask: Value, box: tuple[Value, Value, Value, Value], angle: Value
) -> Value:
    """The garment turned upright (bilinear), as ``photo.straighten``; a turn by 0 gives
    the box's crop."""
    top, bottom, left, right = box
    cy = g.op("Div", g.op("Sub", g.op("Add", top, bottom), g.i64(1)), g.i64(2))
    cx = g.op("Div", g.op("Sub", g.op("Add", left, right), g.i64(1)), g.i64(2))
    cyf, cxf = g.f32(cy), g.f32(cx)
    xs, ys = _row_ends(g, mask)
    t = g.op("Mul", angle, g.const(math.pi / 180))
    cos, sin = g.op("Cos", t), g.op("Sin", t)
    dx, dy = g.op("Sub", xs, cxf), g.op("Sub", ys, cyf)
    along = g.op("Add", g.op("Mul", dx, cos), g.op("Mul", dy, sin))
    down = g.op("Sub", g.op("Mul", dy, cos), g.op("Mul", dx, sin))
    x0 = g.op("Floor", g.op("ReduceMin", along, keepdims=0))
    y0 = g.op("Floor", g.op("ReduceMin", down, keepdims=0))
    width = g.i64_of(
        g.op(
            "Add", g.op("Sub", g.op("Ceil", g.op("ReduceMax", along, keepdims=0)), x0), g.const(1.0)
        )
    )
    height = g.i64_of(
        g.op(
            "Add", g.op("Sub", g.op("Ceil", g.op("ReduceMax", down, keepdims=0)), y0), g.const(1.0)
        )
    )
    oy = g.op(
        "Add", g.op("Unsqueeze", g.f32(g.op("Range", g.i64(0), height, g.i64(1))), g.i64([1])), y0
    )
    ox = g.op(
        "Add", g.op("Unsqueeze", g.f32(g.op("Range", g.i64(0), width, g.i64(1))), g.i64([0])), x0
    )
    h, w = g.shape_of(levels, 0), g.shape_of(levels, 1)
    hf, wf = g.f32(h), g.f32(w)
    limit = g.const(1e-3)
    x = g.op(
        "Add",
        g.op("Add", cxf, g.const(1.0)),
        g.op("Sub", g.op("Mul", ox, cos), g.op("Mul", oy, sin)),
    )
    y = g.op(
        "Add",
        g.op("Add", cyf, g.const(1.0)),
        g.op("Add", g.op("Mul", ox, sin), g.op("Mul", oy, cos)),
    )
    x = g.op("Min", g.op("Max", x, g.const(0.0)), g.op("Sub", g.op("Add", wf, g.const(1.0)), limit))
    y = g.op("Min", g.op("Max", y, g.const(0.0)), g.op("Sub", g.op("Add", hf, g.const(1.0)), limit))
    x0i, y0i = g.op("Floor", x), g.op("Floor", y)
    fx, fy = g.op("Sub", x, x0i), g.op("Sub", y, y0i)
    xi, yi = g.i64_of(x0i), g.i64_of(y0i)
    stride = g.op("Add", w, g.i64(2))
    xi1 = g.op("Min", g.op("Add", xi, g.i64(1)), g.op("Add", w, g.i64(1)))
    yi1 = g.op("Min", g.op("Add", yi, g.i64(1)), g.op("Add", h, g.i64(1)))
    flat = g.op("Reshape", g.op("Pad", levels, g.i64([1, 1, 1, 1])), g.i64([-1]))

    def at(row: Value, col: Value) -> Value:
        return g.op("Gather", flat, g.op("Add", g.op("Mul", row, stride), col), axis=0)

    one = g.const(1.0)
    upper = g.op("Add", g.op("Mul", at(yi, xi), g.op("Sub", one, fx)), g.op("Mul", at(yi, xi1), fx))
    lower = g.op(
        "Add", g.op("Mul", at(yi1, xi), g.op("Sub", one, fx)), g.op("Mul", at(yi1, xi1), fx)
    )
    return g.op("Add", g.op("Mul", upper, g.op("Sub", one, fy)), g.op("Mul", lower, fy))


def _resize_weights(g: Builder, size_in: Value, size_out: Value) -> Value:
    """(size_out, size_in) antialiased bicubic weights, as ``resample.resize_weights``."""
    fin, fout = g.f32(size_in), g.f32(size_out)
    scale = g.op("Div", fin, fout)
    stretch = g.op("Max", scale, g.const(1.0))
    half = g.const(0.5)
    centres = g.op(
        "Mul", g.op("Add", g.f32(g.op("Range", g.i64(0), size_out, g.i64(1))), half), scale
    )
    x = g.op(
        "Div",
        g.op(
            "Sub",
            g.op(
                "Unsqueeze",
                g.op("Add", g.f32(g.op("Range", g.i64(0), size_in, g.i64(1))), half),
                g.i64([0]),
            ),
            g.op("Unsqueeze", centres, g.i64([1])),
        ),
        stretch,
    )
    a = g.const(resample.CUBIC_A)
    ax = g.op("Abs", x)
    near = g.op(
        "Add",
        g.op(
            "Mul",
            g.op(
                "Mul",
                g.op(
                    "Sub",
                    g.op("Mul", g.op("Add", a, g.const(2.0)), ax),
                    g.op("Add", a, g.const(3.0)),
                ),
                ax,
            ),
            ax,
        ),
        g.const(1.0),
    )
    far = g.op(
        "Mul",
        g.op(
            "Sub",
            g.op(
                "Mul", g.op("Add", g.op("Mul", g.op("Sub", ax, g.const(5.0)), ax), g.const(8.0)), ax
            ),
            g.const(4.0),
        ),
        a,
    )
    weights = g.op(
        "Where",
        g.op("Less", ax, g.const(1.0)),
        near,
        g.op("Where", g.op("Less", ax, g.const(2.0)), far, g.const(0.0)),
    )
    return g.op("Div", weights, g.op("ReduceSum", weights, g.i64([1]), keepdims=1))


def _fit_centre_sharpen(g: Builder, crop: Value) -> Value:
    """(h, w) levels -> uint8 (28, 28): fitted, centred, x255, sharpened, rounded."""
    h, w = g.shape_of(crop, 0), g.shape_of(crop, 1)
    longer = g.f32(g.op("Max", h, w))
    size = float(IMAGE_SIZE)

    def fitted(n: Value) -> Value:
        scaled = g.op("Round", g.op("Div", g.op("Mul", g.f32(n), g.const(size)), longer))
        return g.i64_of(g.op("Max", scaled, g.const(1.0)))

    new_h, new_w = fitted(h), fitted(w)
    small = g.op(
        "MatMul",
        g.op("MatMul", _resize_weights(g, h, new_h), crop),
        g.op("Transpose", _resize_weights(g, w, new_w)),
    )
    top = g.op("Div", g.op("Sub", g.i64(IMAGE_SIZE + 1), new_h), g.i64(2))
    left = g.op("Div", g.op("Sub", g.i64(IMAGE_SIZE + 1), new_w), g.i64(2))
    pads = g.as_1d(
        top,
        left,
        g.op("Sub", g.op("Sub", g.i64(IMAGE_SIZE), new_h), top),
        g.op("Sub", g.op("Sub", g.i64(IMAGE_SIZE), new_w), left),
    )
    canvas = g.op("Mul", g.op("Pad", small, pads), g.const(255.0))
    r = resample.SHARPEN_RADIUS
    taps = resample.gaussian_taps()
    padded = g.op("Pad", canvas, g.i64([r, r, r, r]))
    rows = g.op("Mul", g.const(taps[0]), g.slice(padded, [0], [IMAGE_SIZE], [0]))
    for i in range(1, 2 * r + 1):
        term = g.op("Mul", g.const(taps[i]), g.slice(padded, [i], [i + IMAGE_SIZE], [0]))
        rows = g.op("Add", rows, term)
    blurred = None
    for i in range(2 * r + 1):
        term = g.op("Mul", g.const(taps[i]), g.slice(rows, [i], [i + IMAGE_SIZE], [1]))
        blurred = term if blurred is None else g.op("Add", blurred, term)
    sharp = g.op(
        "Add", canvas, g.op("Mul", g.const(resample.SHARPEN_AMOUNT), g.op("Sub", canvas, blurred))
    )
    return g.op("Cast", g.clip(g.op("Round", sharp), 0.0, 255.0), to=TensorProto.UINT8)


def _photo_way(g: Builder, image: Value) -> Value:
    """Any picture but 28x28: ``photo.prepare_photo`` (uint8 (28, 28))."""
    x, height, width = _working_copy(g, image)
    bg, noise = _background(g, x, height, width)
    far = g.distance(x, bg)  # (H, W)
    strongest = g.op("ReduceMax", _box3(g, far, (0, 1)), keepdims=0)
    root3 = g.const(math.sqrt(3))
    floor = g.op(
        "Max",
        g.op("Mul", g.op("Mul", g.const(photo.NOISE_TIMES), noise), root3),
        g.const(photo.NOISE_FLOOR),
    )
    offset = g.op("Mul", g.op("Mul", g.const(photo.LEVEL_NOISE), noise), root3)
    levels = g.clip(
        g.op(
            "Mul",
            g.op("Sub", far, offset),
            g.op("Div", g.const(1.0), g.op("Max", g.op("Sub", strongest, offset), g.const(1e-3))),
        ),
        0.0,
        1.0,
    )
    levels = g.clip(
        g.op(
            "Mul",
            g.op("Sub", levels, g.const(photo.LEVEL_FLOOR)),
            g.const(1 / (1 - photo.LEVEL_FLOOR)),
        ),
        0.0,
        1.0,
    )
    smooth = g.distance(_box3(g, x, (1, 2)), bg)
    mask = g.op(
        "Greater", smooth, g.op("Max", floor, g.op("Mul", g.const(photo.TRIM_FRACTION), strongest))
    )
    found = g.op(
        "And",
        g.op("Greater", strongest, floor),
        g.op(
            "Cast",
            g.op("ReduceMax", g.op("Cast", mask, to=TensorProto.INT32), keepdims=0),
            to=TensorProto.BOOL,
        ),
    )
    # the rest only where something stands out; else black
    rest = Builder(g.prefix + "garment_")
    rows_any = rest.op(
        "Cast",
        rest.op(
            "ReduceMax", rest.op("Cast", mask, to=TensorProto.INT32), rest.i64([1]), keepdims=0
        ),
        to=TensorProto.BOOL,
    )
    cols_any = rest.op(
        "Cast",
        rest.op(
            "ReduceMax", rest.op("Cast", mask, to=TensorProto.INT32), rest.i64([0]), keepdims=0
        ),
        to=TensorProto.BOOL,
    )
    top, bottom = _first_last(rest, rows_any)
    left, right = _first_last(rest, cols_any)
    box = (top, bottom, left, right)
    angle = _tilt(rest, levels, mask, box)
    prepared = _fit_centre_sharpen(rest, _straighten(rest, levels, mask, box, angle))
    black = Builder(g.prefix + "black_")
    zeros = black.const(np.zeros((IMAGE_SIZE, IMAGE_SIZE)), np.uint8)
    (out,) = g.if_(found, rest, [prepared], black, [zeros], [TensorProto.UINT8])
    return out


def preparation_graph() -> onnx.ModelProto:
    """``image`` uint8 [height, width, 3] -> ``prepared`` uint8 [28, 28], as
    ``prepare`` does with the default Preparation (fit "trim", invert "auto")."""
    g = Builder("prep_")
    image = "image"
    h, w = g.shape_of(image, 0), g.shape_of(image, 1)
    square = g.op("And", g.op("Equal", h, g.i64(IMAGE_SIZE)), g.op("Equal", w, g.i64(IMAGE_SIZE)))
    dataset = Builder("dataset_")
    small = _dataset_way(dataset, image)
    photos = Builder("photo_")
    prepared_photo = _photo_way(photos, image)
    (out,) = g.if_(square, dataset, [small], photos, [prepared_photo], [TensorProto.UINT8])
    g.nodes.append(helper.make_node("Identity", [out], ["prepared"]))
    graph = helper.make_graph(
        g.nodes,
        "fashion_onnx_photo_preparation",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["height", "width", 3])],
        [helper.make_tensor_value_info("prepared", TensorProto.UINT8, [IMAGE_SIZE, IMAGE_SIZE])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model
