"""Keras -> ONNX: the float32 graph (tf2onnx) and its static int8 quantization (onnxruntime).

What export writes and what mixed precision measures are the same graphs, so
both build on this module. tf2onnx's ``from_keras`` fails on Keras 3, so the
converter gets the model's dynamic-batch ``tf.function`` instead, frozen first
(see :func:`frozen_serving_graph`). The float32 graph is built once per run and
cached on the source; the int8 graph is calibrated on the same images as TFLite int8.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import tfquiet
from ..errors import EXIT_FAILED, EdgecnnError, require
from .source import INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:
    from .source import ExportSource

BATCH_DIM = "batch"
#: Chosen by timing on x86 (bench/onnx_int8_choice.py): uint8 activations with int8 weights in QDQ
#: form run fastest with onnxruntime (int8 activations in QOperator form ran 6x slower); per-channel
#: weights cost nothing measurable and keep more of the accuracy. The float stem: see apply_float_stem (the
#: rule without an accuracy budget; with one, each layer's precision is measured, the stem's included).
#: ``reduce_range`` (7-bit weights): x86 CPUs without an int8 dot product (AVX2, AVX-512 without VNNI) multiply
#: uint8 by int8 in pairs summed into int16, which saturates with full-range weights. On MobileNetV2 (the trained
#: nested wrapper, every node int8), agreement with float32 was 95.5% under QEMU's Haswell (AVX2) against 99.0%
#: with VNNI; with reduce_range 99.0% on both, so the file holds on every x86 class (README, "ONNX int8 on
#: every CPU").
QUANTIZATION = {"quant_format": "QDQ", "activation_type": "uint8", "weight_type": "int8",
                "per_channel": True, "reduce_range": True, "calibrate_method": "MinMax", "float_stem": True}
#: A first convolution with this few input channels stays float32 (see apply_float_stem).
FLOAT_STEM_MAX_CHANNELS = 3
CALIBRATION_BATCH = 50
#: Attributes that keep grappler from inlining a function call. Keras runs grouped convolutions (ConvNeXt's
#: depthwise ``Conv2D(groups=channels)``) in an XLA-compiled ``tf.function`` on CPU; tf2onnx cannot convert the
#: call ("No Op registered for StatefulPartitionedCall"), but can the Conv2D inside it, to a grouped ONNX Conv.
NO_INLINE_ATTRS = ("_noinline", "_XlaMustCompile", "_XlaCompile")


def float32_model(source: ExportSource):
    """The float32 ``onnx.ModelProto`` (cached): converted, simplified, with a named batch and metadata."""
    if "onnx" not in source.cache:
        tf2onnx = require("tf2onnx", feature="ONNX export")
        onnx = require("onnx", feature="ONNX export")
        from onnx.tools.update_model_dims import update_inputs_outputs_dims

        graph_def, inputs, outputs = frozen_serving_graph(source)
        with tfquiet.quiet(stdout=True):
            model, _ = tf2onnx.convert.from_graph_def(
                graph_def, name="serve", input_names=inputs, output_names=outputs, opset=source.opset,
                custom_op_handlers={"Erfc": (_erfc_as_erf, [])},
                tensors_to_rename={inputs[0]: INPUT_NAME, outputs[0]: OUTPUT_NAME})
        _require_image_input_only(model, source)
        _constant_reshapes(model)
        batch = source.batch or BATCH_DIM
        model = update_inputs_outputs_dims(model, {INPUT_NAME: [batch, *source.input_shape]},
                                           {OUTPUT_NAME: [batch, source.classes]})
        onnx.checker.check_model(model, full_check=True)
        source.cache["onnx"] = model
    return source.cache["onnx"]


def frozen_serving_graph(source: ExportSource) -> tuple[Any, list[str], list[str]]:
    """The serving function as a frozen ``GraphDef``, its input tensor names (the image first) and output names.

    tf2onnx's ``from_function`` makes every non-resource input of the concrete
    function a graph input, captured tensors included. Keras keeps some model
    constants as plain tensors, not variables (``Normalization``'s mean and
    variance, computed in ``build``/``adapt``), so the function captures them and
    the ONNX graph would read them as inputs with no value. Freezing first (as
    ``from_function`` does, with the same options) turns variables and captured
    tensors alike into constants and leaves the image as the only input. Calls
    marked for XLA or no inlining are unmarked (see :data:`NO_INLINE_ATTRS`) so
    that tf2onnx's graph optimization inlines them.
    """
    tf = tfquiet.tensorflow()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = source.serving_function().get_concrete_function()
    with tf.device("/cpu:0"):
        frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False, aggressive_inlining=True)
    inputs = [t.name for t in frozen.inputs if t.dtype != tf.dtypes.resource]
    outputs = [t.name for t in frozen.outputs]
    graph_def = frozen.graph.as_graph_def(add_shapes=True)
    for attrs in [function.attr for function in graph_def.library.function] + [node.attr for node in graph_def.node]:
        for key in NO_INLINE_ATTRS:
            if key in attrs:
                del attrs[key]
    return graph_def, inputs, outputs


def _erfc_as_erf(ctx, node, name: str, args: list) -> None:
    """tf2onnx handler for TF's Erfc (exact GELU, ``0.5 * x * erfc(-x / sqrt(2))``), which ONNX and tf2onnx lack:
    ``erfc(z) = 1 - erf(z)``, with ONNX's Erf."""
    from tf2onnx import utils

    node.type = "Erf"
    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.output[0]))
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype=dtype))
    ctx.insert_new_node_on_output("Sub", node.output[0], name=utils.make_name(f"{name}_erfc"),
                                  inputs=[one.output[0], node.output[0]])


def _require_image_input_only(model, source: ExportSource) -> None:
    """Fail in one line when the converted graph reads anything but the image (a file no runtime could feed)."""
    extra = [value.name for value in model.graph.input if value.name != INPUT_NAME]
    if extra:
        raise EdgecnnError(f"ONNX conversion of {source.model_path} failed: tf2onnx left {len(extra)} model "
                           f"constants as graph inputs (first: {extra[0]}): the TensorFlow graph still reads them as "
                           "placeholders after freezing, so no runtime could feed them", exit_code=EXIT_FAILED)


def calibration_reader(images: np.ndarray, step: int):
    """onnxruntime's calibration reader over ``images``, ``step`` images a run (1 for a static batch-1 graph)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(range(0, len(images), step))

        def get_next(self):
            start = next(self._batches, None)
            return None if start is None else {INPUT_NAME: images[start:start + step]}

    return Reader()


def prepare(source: ExportSource, folder: Path) -> tuple[Path, list[str]]:
    """The float32 graph as quantization reads it (pre-processed, float stem rewritten) in ``folder``, and the
    stem's nodes (empty when the stem rule does not apply)."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32, prepared = folder / "fp32.onnx", folder / "pre.onnx"
    onnx.save(float32_model(source), str(fp32))
    with tfquiet.quiet(stdout=True):
        # ONNX's own shape inference suffices (only the batch dimension is dynamic); the symbolic
        # pass would import sympy, a heavy dependency nothing else needs. Same graph either way.
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    return prepared, apply_float_stem(prepared) if QUANTIZATION["float_stem"] else []


def quantize_prepared(source: ExportSource, prepared: Path, out: Path, float_nodes: list[str],
                      ranges: Path | None = None):
    """Quantize the prepared graph (see :data:`QUANTIZATION`), calibrated on the source's images, with
    ``float_nodes`` left float; the checked ``onnx.ModelProto`` with the source's metadata.

    ``ranges``: a file for the calibrated tensor ranges, written by the first call and read by the next ones
    (onnxruntime 1.32's calibration cache; the ranges do not depend on which nodes stay float), so that mixed
    precision calibrates once instead of once per candidate. Older onnxruntime calibrates every time.
    """
    import inspect

    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    cache = ({"calibration_cache_path": str(ranges)}
             if ranges is not None and "calibration_cache_path" in inspect.signature(quantize_static).parameters else {})
    with tfquiet.quiet(stdout=True):
        reader = calibration_reader(source.calibration(), source.batch or CALIBRATION_BATCH)
        quantize_static(str(prepared), str(out), reader, nodes_to_exclude=list(float_nodes), **cache,
                        quant_format=getattr(QuantFormat, QUANTIZATION["quant_format"]),
                        activation_type=types[QUANTIZATION["activation_type"]],
                        weight_type=types[QUANTIZATION["weight_type"]],
                        per_channel=QUANTIZATION["per_channel"], reduce_range=QUANTIZATION["reduce_range"],
                        calibrate_method=getattr(CalibrationMethod, QUANTIZATION["calibrate_method"]))
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    return model


def apply_float_stem(path: Path) -> list[str]:
    """Keep a thin first convolution (and its pooling) in float32; returns the nodes to leave unquantized.

    With 1-3 input channels an int8 convolution has a 9-27 element reduction,
    too short for the int8 kernels: on x86 it ran 3x slower than float32 and cost
    the whole int8 gain. Quantizing only from after the first pooling is faster,
    but onnxruntime would move the QuantizeLinear back above a MaxPool and run a
    slow uint8 MaxPool, so a ``Conv -> Relu -> MaxPool`` stem is rewritten as the
    identical ``Conv -> MaxPool -> Relu`` (ReLU is monotonic, so they commute) and
    the quantizer's input then follows the Relu, which onnxruntime fuses into it.
    The graph at ``path`` is rewritten in place.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    conv = next((n for n in graph.node if n.op_type == "Conv"), None)
    if conv is None or conv.input[1] not in weights:
        return []
    if numpy_helper.to_array(weights[conv.input[1]]).shape[1] > FLOAT_STEM_MAX_CHANNELS:
        return []
    chain = [conv]
    for op in ("Relu", "MaxPool"):
        following = consumers.get(chain[-1].output[0], [])
        if len(following) != 1 or following[0].op_type != op:
            return []  # not the conv/relu/pool stem this rewrite is proven for: quantize it all
        chain.append(following[0])
    _, relu, pool = chain
    pool_out, relu_out = pool.output[0], relu.output[0]
    pool.input[0], pool.output[0] = conv.output[0], relu_out
    relu.input[0], relu.output[0] = relu_out, pool_out
    nodes = list(graph.node)
    nodes.remove(relu)
    nodes.insert(nodes.index(pool) + 1, relu)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # shapes of the swapped tensors changed; the quantizer re-infers them
    onnx.save(model, str(path))
    return [conv.name, pool.name, relu.name]


def _constant_reshapes(model) -> None:
    """Give Reshape nodes a constant target shape where only the batch dimension is dynamic.

    tf2onnx turns Keras's Flatten into Shape-Gather-Cast-Slice-Concat-Cast-Reshape
    to carry the batch size; ``[-1, K]`` means the same (K is static) and saves six
    nodes per run, in the float32 and int8 graphs alike.
    """
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    if any(attr.HasField("g") or len(attr.graphs) for node in graph.node for attr in node.attribute):
        return  # control flow: subgraphs may read outer values, leave the graph as converted
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    shapes = {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
              for v in inferred.value_info}
    constants = {init.name for init in graph.initializer}
    for node in graph.node:
        dims = shapes.get(node.output[0]) if node.op_type == "Reshape" else None
        if not dims or len(dims) < 2 or not all(d and d > 0 for d in dims[1:]) or node.input[1] in constants:
            continue
        name = f"{node.output[0]}__shape"
        graph.initializer.append(numpy_helper.from_array(np.array([-1, *dims[1:]], dtype=np.int64), name))
        node.input[1] = name
    _drop_unused(graph)


def _drop_unused(graph) -> None:
    """Remove nodes and initializers nothing reads any more."""
    while True:
        used = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
        dead = [node for node in graph.node if not any(out in used for out in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for init in [init for init in graph.initializer if init.name not in used]:
        graph.initializer.remove(init)
