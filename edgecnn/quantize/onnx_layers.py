"""An ONNX graph calibrated for int8, then quantized with any set of layers kept in float.

The ONNX counterpart of :mod:`.tflite_layers`, with the same interface
(:class:`CalibratedONNX` ``.layers``, ``.quantize``, ``.layer_sqnr``; and
``.layer_latencies``, TFLite's :func:`.latency.layer_latencies`), so the
search of :mod:`.mixed` serves both. The graph is the one ``onnx-int8``
quantizes (onnxruntime's pre-processing, the float stem rewrite) and each
candidate is one ``quantize_static(nodes_to_exclude=...)`` call with the
export's own settings (:data:`edgecnn.convert.onnx.QUANTIZATION`).

A *layer* is one weighted node (Conv, Gemm, MatMul with constant weights) with
the nodes after it up to the next weighted one. Its error is that of its
output, as in the TFLite rows. A layer is cut out of the graph (to measure or
time it alone) between every tensor its nodes read from outside it and its
output: a residual Add, a squeeze-and-excitation Mul or a Concat reads a tensor
an earlier layer wrote, and a cut given only the weighted node's input would
reach back through that tensor to the model's input. Layers are named after the
Keras layers, those of nested models included, as TFLite's are (:mod:`.keras_names`).
One difference matters when choosing: in QDQ form a tensor is quantized again
at the input of every int8 node that reads it, so a tensor int8 cannot hold
stays float only when its writer and its readers all do (TFLite's denylist
keeps a float layer's output float).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Sequence

import numpy as np

from .error import channel_nsr, sqnr_db
from .keras_names import Rows, keras_layers, layer_names, scopes
from ..convert import onnx as onnx_convert
from ..convert.onnx import CALIBRATION_BATCH, calibration_reader
from ..progress import Progress, counted
from .latency import RUNS, LayerLatency, time_layer
from .mixed import EVAL_BATCH, QuantLayer, eval_threads

if TYPE_CHECKING:
    from ..convert.source import ExportSource

#: ONNX ops that carry weights (a constant second input): the units of mixed precision.
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
#: Bytes per element of a weighted node's inputs in the int8 file: int8 weights, int32 bias.
_INT8_BYTES = (1, 4)


class CalibratedONNX:
    """The source's float graph prepared once; :meth:`quantize` makes the int8 file with any layers kept float."""

    def __init__(self, source: ExportSource, held_out: np.ndarray) -> None:
        import onnx

        self._source, self._held_out = source, held_out
        self._models: dict[tuple[str, ...], bytes] = {}
        self._ranges = tempfile.TemporaryDirectory(prefix="edgecnn-onnx-ranges-")  # removed with this object
        with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as work:
            prepared, _ = onnx_convert.prepare(source, Path(work))
            # shapes inferred again: the stem rewrite drops them, and cutting a layer out of the graph needs them
            self._prepared = onnx.shape_inference.infer_shapes(onnx.load(str(prepared)))
        self.layers = _layers(self._prepared, *keras_layers(source.model))
        #: per layer, the tensors its cut reads and the one it writes (see :func:`_cuts`)
        self._cuts = _cuts(self._prepared, self.layers)

    def quantize(self, float_layers: Collection[QuantLayer]) -> bytes:
        """The serialized int8 model (float input and output) with these layers kept in float (cached)."""
        nodes = tuple(sorted(node for layer in float_layers for node in layer.nodes))
        if nodes not in self._models:
            with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as work:
                prepared = self._save(Path(work))
                model = onnx_convert.quantize_prepared(self._source, prepared, Path(work) / "int8.onnx", list(nodes),
                                                       ranges=Path(self._ranges.name) / "ranges.json")
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

        with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as work:
            qdq, augmented = Path(work) / "int8.onnx", Path(work) / "debug.onnx"
            qdq.write_bytes(self.quantize(()))
            modify_model_output_intermediate_tensors(str(qdq), str(augmented))
            reader = calibration_reader(self._held_out, self._source.batch or CALIBRATION_BATCH)
            activations = collect_activations(str(augmented), reader)
        matching = create_activation_matching(activations)
        shapes = _shapes(self._prepared)
        extractor = onnx.utils.Extractor(self._prepared)

        def as_read(tensor: str) -> np.ndarray | None:
            """The tensor as the int8 graph's next node reads it (dequantized when it is quantized)."""
            found = matching[tensor]["post_qdq"] if tensor in matching else activations.get(tensor)
            return None if found is None or tensor not in shapes else np.concatenate(
                [a.reshape(-1, *shapes[tensor]) for a in found])

        sqnr = {}
        for layer, (inputs, output) in zip(self.layers, self._cuts):
            feeds, quantized = {name: as_read(name) for name in inputs}, as_read(output)
            if quantized is None or any(value is None for value in feeds.values()):
                sqnr[layer.name] = float("nan")
                continue
            real = _run(_session(extractor.extract_model(list(inputs), [output]).SerializeToString()), feeds)
            sqnr[layer.name] = sqnr_db(channel_nsr(real, quantized, axis=1))
        return sqnr

    def layer_latencies(self, images: np.ndarray, *, runs: int = RUNS,
                        on_progress: Progress | None = None) -> list[LayerLatency]:
        """Float32 and int8 p50 of each layer alone at batch 1, one thread (:func:`.latency.time_layer`).

        Each layer is cut (``onnx.utils.Extractor``) from the float graph between
        its input tensors (all it reads from outside it, see :func:`_cut`) and its
        output, and from the all-int8 model (the export's own file, :meth:`quantize`)
        between the same tensors as that model quantizes them: from the
        QuantizeLinear outputs of its inputs to that of its output. So the int8
        figure is that of the kernels onnxruntime fuses the export's QDQ nodes
        into, with the scales the export calibrated, uint8 in and out as inside
        the whole model (TFLite's blocks also run int8 in and out); no second
        calibration can make it differ from the file. Each cut is fed its own
        graph's activations there on the first of ``images``. A cut
        pays the layout changes onnxruntime adds at its ends (Transpose around an
        int8 Conv, NCHWc reorders around a float one), which inside the whole
        model neighbouring layers may share. ``on_progress``: each layer timed.
        """
        import onnx

        int8 = onnx.shape_inference.infer_shapes(onnx.load_from_string(self.quantize(())))  # the cut needs shapes
        float_graph, int8_graph = onnx.utils.Extractor(self._prepared), onnx.utils.Extractor(int8)
        quantized = _quantized_tensors(int8)
        nodes = {node.name: node for node in self._prepared.graph.node}
        model_input = self._prepared.graph.input[0].name
        x = np.asarray(images[:1], dtype=np.float32)
        starts = {name for inputs, _ in self._cuts for name in inputs}
        # every cut's feeds from one run of each graph (a prefix model per cut would cost quadratic time)
        float_values = _values(float_graph, model_input, x, starts)
        int8_values = _values(int8_graph, model_input, x, {quantized.get(name, name) for name in starts})

        def call(extractor, values: dict[str, np.ndarray], starts: list[str], end: str):
            feeds = {name: values[name] for name in starts}
            session = _session(extractor.extract_model(starts, [end]).SerializeToString())
            return lambda: session.run(None, feeds)

        found, cuts = [], list(zip(self.layers, self._cuts))
        for layer, (inputs, output) in counted(cuts, "timing float32 and int8", on_progress):
            found.append(time_layer(" + ".join(nodes[name].op_type for name in layer.nodes), layer.input_shape,
                                    call(float_graph, float_values, list(inputs), output),
                                    call(int8_graph, int8_values, [quantized.get(name, name) for name in inputs],
                                         quantized.get(output, output)),
                                    runs=runs))
        return found

    def _save(self, folder: Path) -> Path:
        import onnx

        path = folder / "pre.onnx"
        onnx.save(self._prepared, str(path))
        return path


def _values(extractor, model_input: str, x: np.ndarray, names: set[str]) -> dict[str, np.ndarray]:
    """The tensors ``names`` of the extractor's graph on input ``x`` (the input itself among them)."""
    inner = sorted(names - {model_input})
    if not inner:
        return {model_input: x}
    session = _session(extractor.extract_model([model_input], inner).SerializeToString())
    return {**dict(zip(inner, session.run(inner, {model_input: x}))), model_input: x}


def onnx_call(model: bytes, image: np.ndarray) -> Callable[[], Any]:
    """One call of a float-input ONNX file on one image: batch 1, one thread (:func:`.latency.model_latencies`)."""
    session = _session(model)
    feeds = {session.get_inputs()[0].name: np.asarray(image, dtype=np.float32)[None]}
    return lambda: session.run(None, feeds)


def run_onnx(model: bytes, x: np.ndarray) -> np.ndarray:
    """Float outputs of a float-input ONNX model on a batch, on every core (a static batch-1 graph: one image a
    call)."""
    session = _session(model, threads=eval_threads())
    return _run(session, {session.get_inputs()[0].name: x})


def _run(session, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The first output over a batch of feeds (a cut may have several inputs), in slices: one image a call when
    the graph's batch is static 1."""
    step = 1 if session.get_inputs()[0].shape[0] == 1 else EVAL_BATCH
    count = len(next(iter(feeds.values())))
    return np.concatenate([session.run(None, {name: value[start:start + step] for name, value in feeds.items()})[0]
                           .astype(np.float32) for start in range(0, count, step)])


def _session(model: bytes, threads: int = 1):
    """An onnxruntime CPU session (one thread: timing), its warnings (unused initializers) kept off the screen."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
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


def _layers(model, keras_rows: Rows = (), models: Collection[str] = ()) -> list[QuantLayer]:
    """The weighted layers of the graph, each with the nodes it owns, in graph order, named after the Keras layers
    (:func:`.keras_names.layer_names`) from the scopes of each weighted node's name and its weights' names (tf2onnx
    names both after the Keras layers they come from: a BatchNormalization folded into a convolution names the
    node, the convolution its weights)."""
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
                          "bytes": int(sum(w.size * size for w, size in zip(weights, _INT8_BYTES))),
                          "scopes": scopes([node.name, *node.input[1:]]), "name": node.name})
        elif found:
            found[-1]["nodes"].append(node.name)
    names = layer_names([d["scopes"] for d in found], [d["name"] for d in found], [d["op"] for d in found],
                        keras_rows, models)
    return [QuantLayer(i, names[i], d["op"], tuple(d["nodes"]), d["input_shape"], d["count"], d["bytes"])
            for i, d in enumerate(found)]


def _cuts(model, layers: Sequence[QuantLayer]) -> list[tuple[tuple[str, ...], str]]:
    """Per layer, the tensors its cut reads and the one it writes.

    Its output is the last tensor its nodes compute from its weighted node's
    (nodes after it in graph order may belong to a parallel branch). Its inputs
    are every non-constant tensor its nodes read on the way there that no node of
    the layer writes: the weighted node's input, and for a residual Add, a
    squeeze-and-excitation Mul or a Concat the tensor an earlier layer wrote.
    Declaring only the first would let ``onnx.utils.Extractor`` follow that
    tensor back to the model's input and make a graph that reads an undeclared input.
    """
    graph = model.graph
    by_name = {node.name: node for node in graph.node}
    constants = {init.name for init in graph.initializer} | {""}
    constants |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    return [_cut([by_name[name] for name in layer.nodes], constants) for layer in layers]


def _cut(owned: list, constants: set[str]) -> tuple[tuple[str, ...], str]:
    """One layer's cut (see :func:`_cuts`) from its nodes, weighted node first."""
    derived, output = set(owned[0].output), owned[0].output[0]
    for node in owned[1:]:
        if any(name in derived for name in node.input):
            derived.update(node.output)
            output = node.output[0]
    writer = {out: node for node in owned for out in node.output}
    needed: set[str] = set()
    stack = [output]
    while stack:
        node = writer.get(stack.pop())
        if node is not None and node.name not in needed:
            needed.add(node.name)
            stack.extend(node.input)
    inputs = [name for node in owned if node.name in needed for name in node.input
              if name not in constants and name not in writer]
    return tuple(dict.fromkeys(inputs)), output
