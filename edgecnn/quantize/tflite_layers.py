"""A model calibrated once for TFLite int8, then quantized with any set of layers kept in float.

TensorFlow's QuantizationDebugger calibrates through the converter and keeps
the calibrated (not yet quantized) model, so each mixed-precision candidate is
one cheap ``mlir_quantize`` call with ``denylisted_nodes``, not a new
calibration. A *layer* here is one weighted op (convolution, fully connected)
with the weightless ops that follow it up to the next weighted op (pooling,
reshape, softmax): keeping a layer float keeps that whole run float, so the
activation between two float layers is never quantized. Layers are named after
the Keras layers, those of nested models included, as ONNX's are (:mod:`.keras_names`).
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from typing import TYPE_CHECKING, Collection, Iterator

import numpy as np

from .. import tfquiet
from ..convert.tflite import converter, representative
from .error import channel_nsr, sqnr_db
from ..progress import Progress, counted
from .keras_names import Rows, keras_layers, layer_names, scopes
from .latency import RUNS, LayerLatency, time_layer
from .mixed import QuantLayer

if TYPE_CHECKING:
    from ..convert.source import ExportSource

#: TFLite ops that carry weights: the units of mixed precision.
WEIGHTED_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"})
#: Quantized candidates kept in memory, the most recent ones (all-int8 and every-layer-float come back often).
QUANTIZED_KEPT = 4
#: Ops that only move shapes around; they follow the precision of their layer, not their own.
_BOOKKEEPING_OPS = frozenset({"QUANTIZE", "DEQUANTIZE", "SHAPE", "STRIDED_SLICE", "PACK"})


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """TF's logs, and the debugger's warnings about its own deprecated interpreter, kept off the user's screen."""
    with tfquiet.quiet(stdout=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class CalibratedTFLite:
    """The source calibrated once; :meth:`quantize` makes the int8 file with any layers kept float."""

    def __init__(self, source: ExportSource, held_out: np.ndarray) -> None:
        tf = tfquiet.tensorflow()

        def configure(tf, converter):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative(source.calibration())

        self._held_out = held_out
        self._quantized = functools.lru_cache(maxsize=QUANTIZED_KEPT)(self._mlir_quantize)
        with _quiet():
            self.debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter(source, configure), debug_dataset=representative(held_out))
        int8 = self.quantize(())
        #: the int8 file's output names that differ from the calibrated model's, which the denylist speaks
        self._renamed = _renamed(self.debugger.calibrated_model, int8)
        self.layers = _layers(int8, *keras_layers(source.model), renamed=self._renamed)

    def quantize(self, float_layers) -> bytes:
        """The quantized model (float input and output) with these :class:`QuantLayer` kept in float.

        The debugger's own ``mlir_quantize`` call on its calibrated model: setting
        its ``options`` instead would build and load an instrumented model each
        time too, which doubles the cost of every candidate. The last few files
        are kept: all-int8 and every-layer-float are asked for by several steps.
        """
        return self._quantized(tuple(sorted(node for layer in float_layers for node in layer.nodes)))

    def _mlir_quantize(self, nodes: tuple[str, ...]) -> bytes:
        from tensorflow.lite.python import convert

        debugger = self.debugger
        with _quiet():
            return convert.mlir_quantize(
                debugger.calibrated_model,
                # the converter's per-channel setting, as the debugger passes it
                disable_per_channel=debugger.converter._experimental_disable_per_channel,  # noqa: SLF001
                fully_quantize=False, enable_numeric_verify=False, denylisted_nodes=list(nodes) or None)

    def cpu_ops(self) -> dict[int, tuple[str, ...]]:
        """Per layer index: its int8 ops that XNNPACK leaves on the CPU but takes in float (int8 HARD_SWISH).

        An op the delegate leaves out in float too (the file's last SOFTMAX, fed a
        DEQUANTIZE) is no reason to keep its layer float, so it is not counted.
        """
        from ..runtime.xnnpack import cpu_ops

        left_in_float = {op.op for op in cpu_ops(self.quantize(self.layers))}
        owner = {node: layer.index for layer in self.layers for node in layer.nodes}
        found: dict[int, set[str]] = {}
        for op in cpu_ops(self.quantize(())):
            index = next((owner[name] for name in op.outputs if name in owner), None)
            if index is not None and op.op not in left_in_float:
                found.setdefault(index, set()).add(op.op)
        return {index: tuple(sorted(ops)) for index, ops in found.items()}

    def layer_latencies(self, images: np.ndarray, *, runs: int = RUNS,
                        on_progress: Progress | None = None) -> list[LayerLatency]:
        """Float32 and int8 p50 of each layer alone at batch 1, one thread (:func:`.latency.time_layer`).

        Each layer's ops are cut (:mod:`.tflite_cut`) from the all-int8 file (the
        export's own kernels and scales, int8 in and out as inside the whole file)
        and from the file with every layer float, and fed that file's activations
        on the first of ``images``. Any graph shape serves: nested models,
        residual adds and squeeze-and-excitation gates alike. ``on_progress``: each layer timed.
        """
        from .tflite_cut import TFLiteCutter

        image = np.asarray(images[0], dtype=np.float32)
        with _quiet():
            float32, int8 = TFLiteCutter(self.quantize(self.layers), image), TFLiteCutter(self.quantize(()), image)
        found = []
        as_written = {name: int8_name for int8_name, name in self._renamed.items()}
        for layer in counted(self.layers, "timing float32 and int8", on_progress):
            names = [*layer.nodes, *(as_written[node] for node in layer.nodes if node in as_written)]
            with _quiet():
                (_, float32_call), (ops, int8_call) = float32.call(names), int8.call(names)
            found.append(time_layer(ops, layer.input_shape, float32_call, int8_call, runs=runs))
        return found

    def layer_sqnr(self) -> dict[str, float]:
        """Per layer (by name): SQNR in dB of its int8 output against float on the same input, held-out images.

        Per channel, then the median over channels (see :func:`.error.channel_nsr`).
        """
        tf = tfquiet.tensorflow()
        with _quiet():
            self.debugger.options = tf.lite.experimental.QuantizationDebugOptions()
            instrumented = self.debugger.get_debug_quantized_model()
            options = tf.lite.experimental.QuantizationDebugOptions(
                layer_debug_metrics={}, layer_direct_compare_metrics={"nsr": _channel_nsr})
            debugger = tf.lite.experimental.QuantizationDebugger(
                quant_debug_model_content=instrumented, debug_dataset=representative(self._held_out),
                debug_options=options)
            debugger.run()
        by_tensor = {}
        for key, metrics in debugger.layer_statistics.items():
            tensor = debugger._get_operand_name_and_index(key)[0]  # noqa: SLF001 (the debugger's own key parsing)
            by_tensor[tensor] = float(metrics["nsr"])
        found = {}
        for layer in self.layers:
            nsr = by_tensor.get(layer.nodes[0])
            found[layer.name] = float("nan") if nsr is None else sqnr_db(nsr)
        return found


def _channel_nsr(float_values: np.ndarray, quantized: np.ndarray, scale: float, zero_point: int) -> float:
    """The debugger's metric callback: :func:`.error.channel_nsr` over the last (channel) axis."""
    return channel_nsr(float_values, (quantized.astype(np.float64) - zero_point) * scale, axis=-1)


def _op_outputs(model: bytes) -> list[tuple[str, list[str]]]:
    """Each op of a TFLite file in order: its name (``CONV_2D``) and its output tensors' names."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return [(op["op_name"], [names[i] for i in op["outputs"] if i >= 0])
            for op in interpreter._get_ops_details()]  # noqa: SLF001 (LiteRT's only op listing)


def _renamed(calibrated: bytes, int8: bytes) -> dict[str, str]:
    """int8 file's output name -> the calibrated model's, where they differ.

    The quantizer only adds QUANTIZE and DEQUANTIZE ops, so the other ops pair up
    in order. It renames one output: the model's last op (SOFTMAX) hands its name
    to the DEQUANTIZE after it and becomes ``...:01``. The denylist must use the
    calibrated name, or keeping the last layer float would leave its softmax, and
    the logits before it, in int8 (MobileNetV3Small with every layer float: 98.65%
    agreement with float instead of 100%).
    """
    added = {"QUANTIZE", "DEQUANTIZE"}
    before = [op for op in _op_outputs(calibrated) if op[0] not in added]
    after = [op for op in _op_outputs(int8) if op[0] not in added]
    if [op for op, _ in before] != [op for op, _ in after]:
        raise RuntimeError("the quantizer changed the op sequence beyond adding QUANTIZE/DEQUANTIZE: the layers "
                           "cannot be named for its denylist")
    return {new: old for (_, olds), (_, news) in zip(before, after) for old, new in zip(olds, news) if old != new}


def _layers(model: bytes, keras_rows: Rows = (), models: Collection[str] = (),
            renamed: dict[str, str] | None = None) -> list[QuantLayer]:
    """The weighted layers of a quantized model, each with the ops it owns, in graph order.

    Named after the Keras layers (:func:`.keras_names.layer_names`) from the
    scopes of each weighted op's output names: a fused op's output joins the
    names of what it fused (``.../block_1_expand_1/convolution;.../block_1_expand_BN_1/...``).
    Not from its weights' names: the converter may merge equal constants (zero
    biases) into one tensor named after one of the ops that read it.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    layers: list[dict] = []
    for op in interpreter._get_ops_details():  # noqa: SLF001 (LiteRT's only op listing)
        outputs = [(renamed or {}).get(name, name) for name in (tensors[i]["name"] for i in op["outputs"] if i >= 0)]
        if op["op_name"] in WEIGHTED_OPS:
            weights = [tensors[i] for i in op["inputs"][1:] if i >= 0]
            data = tensors[op["inputs"][0]]
            layers.append({"op": op["op_name"], "nodes": outputs, "input_shape": tuple(int(d) for d in data["shape"][1:]),
                           "scopes": scopes(outputs), "count": int(sum(np.prod(w["shape"]) for w in weights)),
                           "bytes": int(sum(np.prod(w["shape"]) * np.dtype(w["dtype"]).itemsize for w in weights))})
        elif layers and op["op_name"] not in _BOOKKEEPING_OPS:
            layers[-1]["nodes"].extend(outputs)
    names = layer_names([d["scopes"] for d in layers], [d["nodes"][0].split(";")[0] for d in layers],
                        [d["op"] for d in layers], keras_rows, models)
    return [QuantLayer(i, names[i], d["op"], tuple(d["nodes"]), d["input_shape"],
                       d["count"], d["bytes"]) for i, d in enumerate(layers)]
