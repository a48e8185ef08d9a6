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
from fashion_onnx.export.photo_graph.background import background, box3
from fashion_onnx.export.photo_graph.fit import fit_centre_sharpen
from fashion_onnx.export.photo_graph.garment import first_last, straighten, tilt
from fashion_onnx.infer import photo

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


def _photo_way(g: Builder, image: Value) -> Value:
    """Any picture but 28x28: ``photo.prepare_photo`` (uint8 (28, 28))."""
    x, height, width = _working_copy(g, image)
    bg, noise = background(g, x, height, width)
    far = g.distance(x, bg)  # (H, W)
    strongest = g.op("ReduceMax", box3(g, far, (0, 1)), keepdims=0)
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
    smooth = g.distance(box3(g, x, (1, 2)), bg)
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
    top, bottom = first_last(rest, rows_any)
    left, right = first_last(rest, cols_any)
    box = (top, bottom, left, right)
    angle = tilt(rest, levels, mask, box)
    prepared = fit_centre_sharpen(rest, straighten(rest, levels, mask, box, angle))
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
