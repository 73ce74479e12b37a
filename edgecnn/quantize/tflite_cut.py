"""One layer's ops cut out of a TFLite file as a file of their own, to be timed alone.

Any graph shape serves, nested and residual ones included: the cut keeps the
ops that compute the layer's tensors, with their weights and quantization as
the whole file has them, and takes as inputs every activation they read from
outside (both operands of a residual add, the gate of a squeeze-and-excitation
multiply). So a layer's int8 figure is that of the export's own kernels and
scales, fed the activations the whole file computes there.
"""
from __future__ import annotations

import copy
import functools
from typing import Any, Callable, Collection, NamedTuple

import numpy as np


class Cut(NamedTuple):
    """A layer's ops as a file of their own, and the whole file's activations at its inputs and outputs."""

    model: bytes
    ops: str  # their op types in graph order, e.g. "CONV_2D + HARD_SWISH"
    feeds: list[np.ndarray]  # per input of the cut, in order
    outputs: list[np.ndarray]  # per output, what the whole file computed there


class TFLiteCutter:
    """A TFLite file read once; :meth:`call` cuts the ops producing some tensors into a timed call."""

    def __init__(self, model: bytes, image: np.ndarray) -> None:
        """``image``: one float input image the whole file runs on, for the activations each cut is fed."""
        from ai_edge_litert.interpreter import Interpreter
        from ai_edge_litert.tools import flatbuffer_utils

        self._tree = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
        graph = self._tree.subgraphs[0]
        self._names = [_text(t.name) for t in graph.tensors]
        self._producer = {out: i for i, op in enumerate(graph.operators) for out in op.outputs if out >= 0}
        # the reference kernels (no delegate) keep every intermediate tensor readable
        whole = Interpreter(model_content=model, experimental_preserve_all_tensors=True)
        inp = whole.get_input_details()[0]
        whole.resize_tensor_input(inp["index"], [1, *inp["shape"][1:]])
        whole.allocate_tensors()
        whole.set_tensor(inp["index"], np.asarray(image, dtype=np.float32)[None])
        whole.invoke()
        self._values: dict[int, np.ndarray] = {}
        for index in range(len(self._names)):
            try:
                self._values[index] = whole.get_tensor(index)
            except ValueError:  # a tensor the interpreter holds no value for (an empty optional input)
                continue

    def cut(self, tensors: Collection[str]) -> Cut:
        """The ops that produce ``tensors`` (a layer's), as a file of their own with what the whole file computed
        around them."""
        wanted = set(tensors)
        ops = sorted({self._producer[i] for i, name in enumerate(self._names)
                      if name in wanted and i in self._producer})
        if not ops:
            raise ValueError(f"no op of this file produces {sorted(wanted)}")
        model, inputs, outputs = self._cut(ops)
        graph, codes, names = self._tree.subgraphs[0], self._tree.operatorCodes, _op_names()
        return Cut(model, " + ".join(names[_builtin(codes[graph.operators[i].opcodeIndex])] for i in ops),
                   [self._values[t] for t in inputs], [self._values[t] for t in outputs])

    def call(self, tensors: Collection[str]) -> tuple[str, Callable[[], Any]]:
        """The op types of the ops that produce ``tensors`` (e.g. ``CONV_2D + HARD_SWISH``), and one call of
        them alone at batch 1, one thread, under LiteRT's default XNNPACK delegate."""
        from ai_edge_litert.interpreter import Interpreter

        cut = self.cut(tensors)
        interpreter = Interpreter(model_content=cut.model, num_threads=1)
        interpreter.allocate_tensors()
        feeds = [(d["index"], value) for d, value in zip(interpreter.get_input_details(), cut.feeds)]

        def run():
            for index, value in feeds:
                interpreter.set_tensor(index, value)
            interpreter.invoke()

        return cut.ops, run

    def _cut(self, ops: list[int]) -> tuple[bytes, list[int], list[int]]:
        """A one-subgraph file of these ops (their tensors renumbered, the constants' buffers kept, the rest:
        other ops, signatures, metadata, left out), and its inputs' and outputs' tensor indices in the whole file."""
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils

        tree, graph = self._tree, self._tree.subgraphs[0]
        chosen = [graph.operators[i] for i in ops]
        produced = {t for op in chosen for t in op.outputs if t >= 0}
        read = [t for op in chosen for t in op.inputs if t >= 0]
        inputs = list(dict.fromkeys(t for t in read if t not in produced and not _constant(tree, graph.tensors[t])))
        outputs = [t for op in chosen for t in op.outputs if t >= 0 and t not in set(read)]
        used = list(dict.fromkeys(t for op in chosen for t in (*op.inputs, *op.outputs, *(op.intermediates or []))
                                  if t >= 0))
        number = {t: i for i, t in enumerate(used)}
        empty = schema.BufferT()
        buffers, tensors = [empty], []
        for t in used:
            tensor = copy.copy(graph.tensors[t])
            if _constant(tree, tensor):
                buffers.append(tree.buffers[tensor.buffer])
                tensor.buffer = len(buffers) - 1
            else:
                tensor.buffer = 0
            tensors.append(tensor)
        cut = schema.SubGraphT()
        cut.tensors, cut.inputs, cut.outputs = tensors, [number[t] for t in inputs], [number[t] for t in outputs]
        cut.operators = []
        for op in chosen:
            op = copy.copy(op)
            op.inputs = [number[t] if t >= 0 else t for t in op.inputs]
            op.outputs = [number[t] if t >= 0 else t for t in op.outputs]
            op.intermediates = [number[t] for t in op.intermediates] if op.intermediates is not None else None
            cut.operators.append(op)
        model = schema.ModelT()
        model.version, model.operatorCodes, model.description = tree.version, tree.operatorCodes, tree.description
        model.subgraphs, model.buffers = [cut], buffers
        return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), inputs, outputs


def _constant(tree: Any, tensor: Any) -> bool:
    """Whether the tensor holds data in the file (weights, biases, shapes), rather than an activation."""
    buffer = tree.buffers[tensor.buffer] if tensor.buffer else None
    return buffer is not None and buffer.data is not None and len(buffer.data) > 0


def _builtin(code: Any) -> int:
    """An operator code's builtin op number (small ones live in the deprecated field)."""
    return max(code.builtinCode, code.deprecatedBuiltinCode)


@functools.cache
def _op_names() -> dict[int, str]:
    """Builtin op number -> its name, as the interpreter lists it (``CONV_2D``)."""
    from ai_edge_litert import schema_py_generated as schema

    return {value: name for name, value in vars(schema.BuiltinOperator).items() if isinstance(value, int)}


def _text(name: bytes | str | None) -> str:
    return name.decode("utf-8") if isinstance(name, bytes) else (name or "")
