"""The photo graph's trim box, tilt and straightening: ``infer.photo.bounds``, ``tilt``
and ``straighten`` as graph nodes."""

from __future__ import annotations

import math

from onnx import TensorProto

from fashion_onnx.export.graph_builder import Builder, Value
from fashion_onnx.infer import photo


def first_last(g: Builder, any_: Value) -> tuple[Value, Value]:
    """The first index where a bool vector is true, and one past the last."""
    as_int = g.op("Cast", any_, to=TensorProto.INT32)
    first = g.op("ArgMax", as_int, axis=0, keepdims=0)
    last = g.op("ArgMax", as_int, axis=0, keepdims=0, select_last_index=1)
    return first, g.op("Add", last, g.i64(1))


def row_ends(g: Builder, mask: Value) -> tuple[Value, Value]:
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


def atan2(g: Builder, y: Value, x: Value) -> Value:
    """atan2 from Atan and Where (ONNX has no Atan2)."""
    safe_x = g.op("Where", g.op("Equal", x, g.const(0.0)), g.const(1e-30), x)
    base = g.op("Atan", g.op("Div", y, safe_x))
    negative_x = g.op("Less", x, g.const(0.0))
    up = g.op("Where", g.op("GreaterOrEqual", y, g.const(0.0)), g.const(math.pi), g.const(-math.pi))
    return g.op("Add", base, g.op("Where", negative_x, up, g.const(0.0)))


def tilt(g: Builder, levels: Value, mask: Value, box: tuple[Value, Value, Value, Value]) -> Value:
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
    by_edges = g.op("Mul", atan2(g, imag_sum, real_sum), g.const(180 / math.pi / 4))
    # by the smallest bounding box of the row ends
    xs, ys = row_ends(g, mask)
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


def straighten(
    g: Builder, levels: Value, mask: Value, box: tuple[Value, Value, Value, Value], angle: Value
) -> Value:
    """The garment turned upright (bilinear), as ``photo.straighten``; a turn by 0 gives
    the box's crop."""
    top, bottom, left, right = box
    cy = g.op("Div", g.op("Sub", g.op("Add", top, bottom), g.i64(1)), g.i64(2))
    cx = g.op("Div", g.op("Sub", g.op("Add", left, right), g.i64(1)), g.i64(2))
    cyf, cxf = g.f32(cy), g.f32(cx)
    xs, ys = row_ends(g, mask)
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
