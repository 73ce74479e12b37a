"""An ONNX graph calibrated for int8, then quantized with any set of layers kept in float.

The ONNX counterpart of :mod:`.tflite_layers`, with the same interface
(:class:`CalibratedONNX` ``.layers``, ``.quantize``, ``.layer_sqnr``; and
``.layer_latencies``, TFLite's :func:`.latency.layer_latencies`), so the
greedy loop of :mod:`.mixed` serves both. The graph is the one ``onnx-int8``
quantizes (onnxruntime's pre-processing, the float stem rewrite) and each
candidate is one ``quantize_static(nodes_to_exclude=...)`` call with the
export's own settings (:data:`edgecnn.export.onnx.QUANTIZATION`).

A *layer* is one weighted node (Conv, Gemm, MatMul with constant weights) with
the nodes after it up to the next weighted one. Its error is that of its
output, as in the TFLite rows. One difference matters when choosing: in
QDQ form a tensor is quantized again at the input of every int8 node that reads
it, so a tensor int8 cannot hold stays float only when its writer and its
readers all do (TFLite's denylist keeps a float layer's output float).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Collection

import numpy as np

from .error import channel_nsr, sqnr_db
from .latency import RUNS, LayerLatency, time_layer
from .mixed import EVAL_BATCH, QuantLayer

if TYPE_CHECKING:
    from ..export.source import ExportSource

#: ONNX ops that carry weights (a constant second input): the units of mixed precision.
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
#: Bytes per element of a weighted node's inputs in the int8 file: int8 weights, int32 bias.
_INT8_BYTES = (1, 4)


class CalibratedONNX:
    """The source's float graph prepared once; :meth:`quantize` makes the int8 file with any layers kept float."""

    def __init__(self, source: ExportSource, held_out: np.ndarray) -> None:
        import onnx

        from ..export import onnx as onnx_export  # here: edgecnn.export imports this package's budget default

        self._source, self._held_out = source, held_out
        self._models: dict[tuple[str, ...], bytes] = {}
        with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as work:
            prepared, _ = onnx_export.prepare(source, Path(work))
            # shapes inferred again: the stem rewrite drops them, and cutting a layer out of the graph needs them
            self._prepared = onnx.shape_inference.infer_shapes(onnx.load(str(prepared)))
        keras_names = [layer.name for layer in getattr(source.model, "layers", ()) if layer.weights]
        self.layers = _layers(self._prepared, keras_names)

    def quantize(self, float_layers: Collection[QuantLayer]) -> bytes:
        """The serialized int8 model (float input and output) with these layers kept in float (cached)."""
        from ..export import onnx as onnx_export

        nodes = tuple(sorted(node for layer in float_layers for node in layer.nodes))
        if nodes not in self._models:
            with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as work:
                prepared = self._save(Path(work))
                model = onnx_export.quantize_prepared(self._source, prepared, Path(work) / "int8.onnx", list(nodes))
            self._models[nodes] = model.SerializeToString()
        return self._models[nodes]

    def layer_sqnr(self) -> dict[str, float]:
        """Per layer (by name): SQNR in dB of its int8 output against float on the same input, every layer int8,
        held-out images.

        TFLite's debugger compares each op this way; onnxruntime's ``qdq_loss_debug``
        gives the tensors of the int8 model as its nodes read them (after each
        QuantizeLinear/DequantizeLinear pair), and the layer's float nodes, cut
        from the float graph, are run on the same input. Per channel (axis 1,
        ONNX's NCHW) then the median over channels (:func:`.error.channel_nsr`).
        """
        import onnx
        from onnxruntime.quantization.qdq_loss_debug import (collect_activations, create_activation_matching,
                                                             modify_model_output_intermediate_tensors)

        from ..export.onnx import CALIBRATION_BATCH, calibration_reader

        with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as work:
            qdq, augmented = Path(work) / "int8.onnx", Path(work) / "debug.onnx"
            qdq.write_bytes(self.quantize(()))
            modify_model_output_intermediate_tensors(str(qdq), str(augmented))
            reader = calibration_reader(self._held_out, self._source.batch or CALIBRATION_BATCH)
            activations = collect_activations(str(augmented), reader)
        matching = create_activation_matching(activations)
        shapes = _shapes(self._prepared)
        nodes = {node.name: node for node in self._prepared.graph.node}
        extractor = onnx.utils.Extractor(self._prepared)

        def as_read(tensor: str) -> np.ndarray | None:
            """The tensor as the int8 graph's next node reads it (dequantized when it is quantized)."""
            found = matching[tensor]["post_qdq"] if tensor in matching else activations.get(tensor)
            return None if found is None or tensor not in shapes else np.concatenate(
                [a.reshape(-1, *shapes[tensor]) for a in found])

        sqnr = {}
        for layer in self.layers:
            first, last = nodes[layer.nodes[0]].input[0], nodes[layer.nodes[-1]].output[0]
            x, quantized = as_read(first), as_read(last)
            if x is None or quantized is None:
                sqnr[layer.name] = float("nan")
                continue
            real = run_onnx(extractor.extract_model([first], [last]).SerializeToString(), x)
            sqnr[layer.name] = sqnr_db(channel_nsr(real, quantized, axis=1))
        return sqnr

    def layer_latencies(self, images: np.ndarray, *, runs: int = RUNS) -> list[LayerLatency]:
        """Float32 and int8 p50 of each layer alone at batch 1, one thread (:func:`.latency.time_layer`).

        Each layer is cut (``onnx.utils.Extractor``) from the float graph between
        its input and output tensors, and from the all-int8 model (the export's
        own file, :meth:`quantize`) between the same tensors as that model
        quantizes them: from the QuantizeLinear output of its input to that of its
        output. So the int8 figure is that of the kernels onnxruntime fuses the
        export's QDQ nodes into, with the scales the export calibrated, uint8 in
        and out as inside the whole model (TFLite's blocks also run int8 in and
        out); no second calibration can make it differ from the file. Each cut is
        fed its own graph's activation there on the first of ``images``. A cut
        pays the layout changes onnxruntime adds at its ends (Transpose around an
        int8 Conv, NCHWc reorders around a float one), which inside the whole
        model neighbouring layers may share.
        """
        import onnx

        int8 = onnx.shape_inference.infer_shapes(onnx.load_from_string(self.quantize(())))  # the cut needs shapes
        float_graph, int8_graph = onnx.utils.Extractor(self._prepared), onnx.utils.Extractor(int8)
        quantized = _quantized_tensors(int8)
        nodes = {node.name: node for node in self._prepared.graph.node}
        model_input = self._prepared.graph.input[0].name
        x = np.asarray(images[:1], dtype=np.float32)

        def call(extractor, start: str, end: str):
            feed = x if start == model_input else _session(
                extractor.extract_model([model_input], [start]).SerializeToString()).run(None, {model_input: x})[0]
            session = _session(extractor.extract_model([start], [end]).SerializeToString())
            return lambda: session.run(None, {start: feed})

        found = []
        for layer in self.layers:
            first, last = nodes[layer.nodes[0]].input[0], nodes[layer.nodes[-1]].output[0]
            found.append(time_layer(" + ".join(nodes[name].op_type for name in layer.nodes), layer.input_shape,
                                    call(float_graph, first, last),
                                    call(int8_graph, quantized.get(first, first), quantized.get(last, last)),
                                    runs=runs))
        return found

    def _save(self, folder: Path) -> Path:
        import onnx

        path = folder / "pre.onnx"
        onnx.save(self._prepared, str(path))
        return path


def run_onnx(model: bytes, x: np.ndarray) -> np.ndarray:
    """Float outputs of a float-input ONNX model on a batch, one thread (a static batch-1 graph: one image a call)."""
    session = _session(model)
    feed = session.get_inputs()[0]
    step = 1 if feed.shape[0] == 1 else EVAL_BATCH
    return np.concatenate([session.run(None, {feed.name: x[start:start + step]})[0].astype(np.float32)
                           for start in range(0, len(x), step)])


def _session(model: bytes):
    """An onnxruntime CPU session on one thread, its warnings (unused initializers) kept off the screen."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _quantized_tensors(model) -> dict[str, str]:
    """Per float tensor of a QDQ graph, the quantized tensor holding it: its QuantizeLinear's output, or, for a
    tensor a DequantizeLinear writes (a graph output), that node's input."""
    found = {node.output[0]: node.input[0] for node in model.graph.node if node.op_type == "DequantizeLinear"}
    found.update({node.input[0]: node.output[0] for node in model.graph.node if node.op_type == "QuantizeLinear"})
    return found


def _shapes(model) -> dict[str, tuple[int, ...]]:
    """Per tensor of the shape-inferred graph, its static shape after the batch dimension (tensors with another
    unknown dimension are left out)."""
    graph = model.graph
    found = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim][1:]
        if all(dims):
            found[value.name] = tuple(dims)
    return found


def _layers(model, keras_names: list[str]) -> list[QuantLayer]:
    """The weighted layers of the graph, each with the nodes it owns, in graph order.

    Named after the Keras layers when the model has one weighted layer per weighted node (tf2onnx's node
    names carry traced scopes such as ``conv2d_1`` for the layer ``conv2d``, which would mislead).
    """
    from onnx import numpy_helper

    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    shapes = _shapes(model)
    found: list[dict] = []
    for node in graph.node:
        if node.op_type in WEIGHTED_OPS and len(node.input) > 1 and node.input[1] in constants:
            weights = [numpy_helper.to_array(constants[name]) for name in node.input[1:3] if name in constants]
            found.append({"op": node.op_type, "nodes": [node.name], "input_shape": shapes.get(node.input[0], ()),
                          "count": int(sum(w.size for w in weights)),
                          "bytes": int(sum(w.size * size for w, size in zip(weights, _INT8_BYTES)))})
        elif found:
            found[-1]["nodes"].append(node.name)
    names = keras_names if len(keras_names) == len(found) else [_short_name(d["nodes"][0], d["op"], i)
                                                                for i, d in enumerate(found)]
    return [QuantLayer(i, names[i], d["op"], tuple(d["nodes"]), d["input_shape"], d["count"], d["bytes"])
            for i, d in enumerate(found)]


def _short_name(node: str, op: str, index: int) -> str:
    """``model/conv2d_1/BiasAdd`` -> ``conv2d_1``; the op and its position when the name says nothing."""
    parts = node.split("/")
    return parts[1] if len(parts) >= 3 else f"{op.lower()}_{index}"
