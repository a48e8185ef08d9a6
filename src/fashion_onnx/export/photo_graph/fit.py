"""The photo graph's fit, centre and sharpen: ``infer.resample``'s resize weights and
unsharp mask as graph nodes."""

from __future__ import annotations

from onnx import TensorProto

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.export.graph_builder import Builder, Value
from fashion_onnx.infer import resample


def resize_weights(g: Builder, size_in: Value, size_out: Value) -> Value:
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


def fit_centre_sharpen(g: Builder, crop: Value) -> Value:
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
        g.op("MatMul", resize_weights(g, h, new_h), crop),
        g.op("Transpose", resize_weights(g, w, new_w)),
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
