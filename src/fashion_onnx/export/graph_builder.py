"""A small builder for hand-written ONNX graphs: named values, constants, one call per node,
and If branches as sub-builders. Used by ``photo_graph`` (the photo preparation as a
graph); torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Value = str  # the name of a tensor in the graph


class Builder:
    """Nodes and constants of one graph (or one If branch), named uniquely."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0
        self._constants: dict[tuple[str, bytes, tuple[int, ...]], Value] = {}

    def name(self, hint: str) -> Value:
        self._count += 1
        return f"{self.prefix}{hint}_{self._count}"

    def const(self, value: Any, dtype: type = np.float32) -> Value:
        """A constant tensor (numpy-convertible ``value`` as ``dtype``), made once."""
        array: np.ndarray = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.tobytes(), array.shape)
        if key not in self._constants:
            name = self.name("const")
            # Constant nodes, not initializers: a branch of an If may hold them too
            self.nodes.append(
                helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))
            )
            self._constants[key] = name
        return self._constants[key]

    def i64(self, value: Any) -> Value:
        return self.const(value, np.int64)

    def op(self, op_type: str, *inputs: Value | None, **attrs: Any) -> Value:
        """One node with one output; None inputs are left empty (optional inputs)."""
        (out,) = self.ops(op_type, *inputs, outputs=1, **attrs)
        return out

    def ops(self, op_type: str, *inputs: Value | None, outputs: int, **attrs: Any) -> list[Value]:
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, [i or "" for i in inputs], names, **attrs))
        return names

    def if_(
        self,
        cond: Value,
        then: Builder,
        then_out: Sequence[Value],
        orelse: Builder,
        else_out: Sequence[Value],
        types: Sequence[int],
    ) -> list[Value]:
        """An If node: ``then`` and ``orelse`` are branches built by their own Builders
        (they may read this graph's values); their outputs are matched by position and
        have the element ``types`` (TensorProto codes)."""

        def branch(b: Builder, outs: Sequence[Value], label: str) -> onnx.GraphProto:
            outputs = [
                helper.make_tensor_value_info(o, t, None) for o, t in zip(outs, types, strict=True)
            ]
            return helper.make_graph(b.nodes, f"{self.prefix}{label}", [], outputs)

        return self.ops(
            "If",
            cond,
            outputs=len(then_out),
            then_branch=branch(then, then_out, self.name("then")),
            else_branch=branch(orelse, else_out, self.name("else")),
        )

    # -- small compounds --------------------------------------------------------------

    def scalar(self, tensor: Value, index: int) -> Value:
        """Element ``index`` of a 1-D tensor, as a 0-D tensor."""
        return self.op("Gather", tensor, self.i64(index), axis=0)

    def shape_of(self, tensor: Value, index: int) -> Value:
        """Dimension ``index`` of ``tensor``'s shape (0-D int64)."""
        return self.scalar(self.op("Shape", tensor), index)

    def as_1d(self, *scalars: Value) -> Value:
        """0-D tensors (of one type) -> a 1-D tensor, for shapes, starts and ends."""
        return self.op("Concat", *[self.op("Unsqueeze", s, self.i64([0])) for s in scalars], axis=0)

    def f32(self, tensor: Value) -> Value:
        return self.op("Cast", tensor, to=TensorProto.FLOAT)

    def i64_of(self, tensor: Value) -> Value:
        return self.op("Cast", tensor, to=TensorProto.INT64)

    def slice(
        self,
        tensor: Value,
        starts: Sequence[Value | int],
        ends: Sequence[Value | int],
        axes: Sequence[int],
    ) -> Value:
        def one_d(values: Sequence[Value | int]) -> Value:
            if all(isinstance(v, int) for v in values):
                return self.i64(list(values))
            return self.as_1d(*[v if isinstance(v, str) else self.i64(v) for v in values])

        return self.op("Slice", tensor, one_d(starts), one_d(ends), self.i64(list(axes)))

    def lower_median(self, tensor: Value, axis: int) -> Value:
        """The lower median along ``axis`` (kept as a size-1 axis): the last of the
        smallest half, by TopK."""
        n = self.shape_of(tensor, axis)
        k = self.op("Add", self.op("Div", self.op("Sub", n, self.i64(1)), self.i64(2)), self.i64(1))
        values, _ = self.ops(
            "TopK",
            tensor,
            self.op("Unsqueeze", k, self.i64([0])),
            outputs=2,
            axis=axis,
            largest=0,
            sorted=1,
        )
        last = self.op("Sub", k, self.i64(1))
        return self.op("Gather", values, self.op("Unsqueeze", last, self.i64([0])), axis=axis)

    def distance(self, a: Value, b: Value) -> Value:
        """The RGB distance of two (3, ...) arrays along axis 0 -> (...)."""
        d = self.op("Sub", a, b)
        return self.op(
            "Sqrt", self.op("ReduceSum", self.op("Mul", d, d), self.i64([0]), keepdims=0)
        )

    def clip(self, tensor: Value, low: float, high: float) -> Value:
        return self.op("Clip", tensor, self.const(low), self.const(high))
