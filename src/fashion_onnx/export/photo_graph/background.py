"""The photo graph's background and garment levels: ``infer.photo.background`` and
``box3`` as graph nodes (side pieces and their medians, the plane through them solved by
Cramer's rule, the Coons patch, the border's noise)."""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper

from fashion_onnx.export.graph_builder import Builder, Value
from fashion_onnx.infer import photo


def pieces(g: Builder, sides: Value, n: Value) -> tuple[Value, Value, Value]:
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


def plane(g: Builder, uv: Value, colours: Value, weights: Value) -> Value:
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


def profiles(g: Builder, pieces: Value, centres: Value, length: Value, n: Value) -> Value:
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


def border(g: Builder, x: Value) -> Value:
    ring = photo.RING
    parts = [
        g.slice(x, [0], [ring], [1]),
        g.slice(x, [-ring], [1 << 62], [1]),
        g.slice(x, [0], [ring], [2]),
        g.slice(x, [-ring], [1 << 62], [2]),
    ]
    return g.op("Concat", *[g.op("Reshape", p, g.i64([3, -1])) for p in parts], axis=1)


def background(g: Builder, x: Value, height: Value, width: Value) -> tuple[Value, Value]:
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
    across_pieces, across_centres, across_length = pieces(g, across, width)
    down_pieces, down_centres, down_length = pieces(g, down, height)
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
        coef = plane(g, uv, colours, weights)  # (3, 3)
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
    profile_a = profiles(g, pair_a, across_centres, across_length, width)  # (2, 3, W)
    profile_d = profiles(g, pair_d, down_centres, down_length, height)  # (2, 3, H)
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
    residual = g.distance(border(g, x), border(g, patch))  # (n,)
    noise = g.op(
        "Mul",
        g.op("Squeeze", g.lower_median(residual, 0), g.i64([0])),
        g.const(1.4826 / math.sqrt(3)),
    )
    return patch, noise


def box3(g: Builder, x: Value, axes: tuple[int, int]) -> Value:
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
