"""What a model file costs before it runs: size, parameters, MACs, TFLite arena.

Parameters and multiply-accumulates (MACs, per image) are read from the graph of
each format so every export is checked against the same architecture:

* TFLite: the ops of the file (read without delegates, so XNNPACK does not hide
  them) and their tensor shapes; works on the base install.
* ONNX: the graph after ONNX shape inference; needs the ``onnx`` package (the
  ``train`` extra). Without it the two figures are ``None``.
* Keras: the layers' kernels and output shapes.

The TFLite arena estimate is the peak, over the ops in execution order, of the
bytes of activation tensors alive at that op (produced earlier, consumed at or
after it). Weights and kernel scratch buffers (im2col and the like, which depend
on the kernel library) are not counted: it is what a planner without
fragmentation must hold for activations, the lower bound of the arena a phone
or a microcontroller allocates. For float16 files it includes the float32 copies
of the weights that TFLite dequantizes once at load and keeps in its arena.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from math import prod
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import ModelFileError, first_line


@dataclass(frozen=True)
class ModelFacts:
    file_bytes: int | None
    params: int | None
    macs: int | None
    arena_bytes: int | None

    def to_dict(self) -> dict[str, int | None]:
        return asdict(self)


def file_facts(path: str | os.PathLike) -> ModelFacts:
    """Facts of a .tflite or .onnx file (Keras facts come from the loaded model: :func:`keras_facts`).

    A file its parser rejects is a :class:`ModelFileError` naming it, before any
    benchmark runs; any other exception is a bug and propagates.
    """
    path = Path(path)
    size = path.stat().st_size
    if path.suffix == ".tflite":
        try:
            return ModelFacts(size, *tflite_graph_facts(path))
        except ValueError as exc:  # LiteRT's error for a file that is not a valid flatbuffer
            raise ModelFileError(f"cannot read the graph of TFLite model {path} (corrupt?): {first_line(exc)}") from None
    if path.suffix == ".onnx":
        return ModelFacts(size, *onnx_graph_facts(path), None)
    if path.suffix == ".ort":  # a flatbuffer only onnxruntime reads: no graph figures, but a broken file is named now
        _check_ort(path)
    return ModelFacts(size, None, None, None)


def _check_ort(path: Path) -> None:
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        raise ModelFileError(f"cannot load ORT-format model {path} (corrupt?): {first_line(exc)}") from None


# --- TFLite -----------------------------------------------------------------

#: op -> (weight input slot, bias input slot) of the ops that hold parameters.
_TFLITE_COMPUTE = {"CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2), "FULLY_CONNECTED": (1, 2),
                   "TRANSPOSE_CONV": (1, 3), "CONV_3D": (1, 2)}


def _tflite_macs(op: str, out_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> int:
    per_output = prod(out_shape[1:])
    if op == "DEPTHWISE_CONV_2D":  # weights (1, kh, kw, channels)
        return per_output * w_shape[1] * w_shape[2]
    if op == "FULLY_CONNECTED":  # weights (units, inputs)
        return per_output * w_shape[-1]
    if op == "CONV_3D":  # weights (kd, kh, kw, in, out)
        return per_output * prod(w_shape[:-1])
    return per_output * prod(w_shape[1:])  # CONV_2D / TRANSPOSE_CONV: (out, kh, kw, in)


def tflite_graph_facts(path: str | os.PathLike) -> tuple[int, int, int]:
    """Parameters, MACs per image and the activation-arena estimate of a .tflite file."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # noqa: SLF001 - the only public-enough view of the graph
    shape = {i: tuple(int(d) for d in t["shape"]) for i, t in tensors.items()}
    params = macs = 0
    for op in ops:
        slots = _TFLITE_COMPUTE.get(op["op_name"])
        if slots is None:
            continue
        inputs = [int(i) for i in op["inputs"]]
        weights = inputs[slots[0]]
        params += sum(prod(shape[inputs[s]]) for s in slots if s < len(inputs) and inputs[s] >= 0)
        macs += _tflite_macs(op["op_name"], shape[int(op["outputs"][0])], shape[weights])
    graph_inputs = [d["index"] for d in interpreter.get_input_details()]
    graph_outputs = [d["index"] for d in interpreter.get_output_details()]
    nbytes = {i: prod(shape[i]) * np.dtype(t["dtype"]).itemsize for i, t in tensors.items()}
    arena = liveness_peak([([int(i) for i in op["inputs"] if i >= 0], [int(o) for o in op["outputs"]]) for op in ops],
                          graph_inputs, graph_outputs, nbytes)
    return params, macs, arena


def liveness_peak(ops: list[tuple[list[int], list[int]]], graph_inputs: Iterable[int],
                  graph_outputs: Iterable[int], nbytes: dict[int, int]) -> int:
    """Peak bytes of simultaneously live activations, ops given in execution order as (inputs, outputs).

    An activation is a graph input or an op output; it lives from the step that
    produces it (graph inputs: step 0) to its last consumer (graph outputs: the end).
    """
    first: dict[int, int] = {t: 0 for t in graph_inputs}
    for step, (_, outputs) in enumerate(ops):
        for t in outputs:
            first.setdefault(t, step)
    last = dict(first)
    for step, (inputs, _) in enumerate(ops):
        for t in inputs:
            if t in first:
                last[t] = max(last[t], step)
    end = max(len(ops) - 1, 0)
    for t in graph_outputs:
        if t in last:
            last[t] = end
    return max((sum(nbytes[t] for t in first if first[t] <= step <= last[t]) for step in range(end + 1)), default=0)


# --- ONNX -------------------------------------------------------------------

#: Quantized ops: which input slots hold parameters (the others are scales, zero points, activations).
_ONNX_QUANT_PARAM_SLOTS = {"DequantizeLinear": (0,), "QuantizeLinear": (), "DynamicQuantizeLinear": (),
                           "QLinearConv": (3, 8), "QLinearMatMul": (0, 3), "QLinearAdd": (0, 3),
                           "ConvInteger": (1,), "MatMulInteger": (0, 1)}
#: Ops with MACs -> the input slot of their weights.
_ONNX_CONV = {"Conv": 1, "QLinearConv": 3, "ConvInteger": 1}
_ONNX_MATMUL = {"MatMul": 1, "Gemm": 1, "QLinearMatMul": 3, "MatMulInteger": 1}


def onnx_graph_facts(path: str | os.PathLike) -> tuple[int | None, int | None]:
    """Parameters and MACs per image of an .onnx file; ``(None, None)`` without the onnx package."""
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:
        return None, None
    try:
        model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    except (DecodeError, onnx.shape_inference.InferenceError) as exc:
        raise ModelFileError(f"cannot read the graph of ONNX model {path} (corrupt?): {first_line(exc)}") from None
    graph = model.graph
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}
    initializers = {init.name: init for init in graph.initializer}
    shapes: dict[str, tuple[int, ...]] = {name: tuple(init.dims) for name, init in initializers.items()}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in dims)

    counted: set[str] = set()
    macs = 0
    for node in graph.node:
        for slot, name in enumerate(node.input):
            if name not in initializers:
                continue
            if node.op_type in _ONNX_QUANT_PARAM_SLOTS:
                if slot in _ONNX_QUANT_PARAM_SLOTS[node.op_type]:
                    counted.add(name)
            elif initializers[name].data_type in floats:
                counted.add(name)
        macs += _onnx_node_macs(node, shapes)
    return sum(prod(initializers[name].dims) for name in counted), macs


def _onnx_node_macs(node: Any, shapes: dict[str, tuple[int, ...]]) -> int:
    out = shapes.get(node.output[0]) if node.output else None
    if out is None:
        return 0
    if node.op_type in _ONNX_CONV:
        weights = shapes.get(node.input[_ONNX_CONV[node.op_type]])
        return prod(out[1:]) * prod(weights[1:]) if weights else 0
    if node.op_type in _ONNX_MATMUL:  # weights (K, M), or (M, K) for Gemm with transB
        weights = shapes.get(node.input[_ONNX_MATMUL[node.op_type]])
        if not weights or len(weights) < 2:
            return 0
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        return prod(out[1:]) * (weights[-1] if trans_b else weights[-2])
    return 0


# --- Keras ------------------------------------------------------------------

def keras_facts(model: Any, path: str | os.PathLike | None = None) -> ModelFacts:
    """Parameters and MACs per image from the layers of a loaded Keras model."""
    macs = 0
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None or not getattr(layer, "built", False):
            continue
        out = tuple(int(d) for d in layer.output.shape[1:])
        k = tuple(int(d) for d in kernel.shape)
        kind = type(layer).__name__
        if kind == "Dense":
            macs += prod(out) * k[0]
        elif kind.startswith("DepthwiseConv"):
            macs += prod(out) * prod(k[:-2])
        elif kind.startswith("Conv"):
            macs += prod(out) * prod(k[:-1])
    size = Path(path).stat().st_size if path else None
    return ModelFacts(size, int(model.count_params()), macs, None)
