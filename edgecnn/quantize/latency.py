"""Per-layer latency in float32 and int8: where int8 gains and where it loses.

:func:`time_layer` times one layer's two kernels; :func:`layer_latencies` cuts
the TFLite layers (ONNX: :meth:`.onnx_layers.CalibratedONNX.layer_latencies`).
Each weighted layer of a chain-shaped Keras model (with the weightless layers
after it: pooling, flatten, dropout) is converted alone to TFLite float32 and
int8 and timed at batch 1 on 1 thread, the two alternating in blocks in one
process. A layer with few input channels (the first convolution of an image
model) can be several times slower in int8 than in float32 under XNNPACK, which
no whole-model figure shows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .. import tfquiet
from ..batch_free import batch_free_reshapes
from ..bench.timing import time_alternating
from ..progress import Progress, counted

#: Timed calls per block and precision; alternating blocks of BLOCK calls.
RUNS, BLOCK, WARMUP = 1000, 50, 100
#: Timed calls per whole candidate model (each call runs every layer: fewer are needed than per layer).
MODEL_RUNS = 300


@dataclass(frozen=True)
class LayerLatency:
    """p50 of one layer block at batch 1, 1 thread, in seconds."""

    layers: str  # e.g. "Conv2D + MaxPooling2D"
    input_shape: tuple[int, ...]
    float32_s: float
    int8_s: float

    @property
    def ratio(self) -> float:
        """int8 / float32: above 1 the int8 kernel is the slower one."""
        return self.int8_s / self.float32_s


def time_layer(layers: str, input_shape: tuple[int, ...], float32_call: Callable[[], Any],
               int8_call: Callable[[], Any], *, runs: int = RUNS) -> LayerLatency:
    """p50 of one layer's float32 and int8 calls, timed in alternating blocks in one process (any runtime)."""
    samples = time_alternating([float32_call, int8_call], runs=runs, warmup=WARMUP, block=BLOCK)
    return LayerLatency(layers, input_shape, float(np.median(samples[0])), float(np.median(samples[1])))


def layer_blocks(model: Any) -> list[list[Any]] | None:
    """The model's layers grouped as weighted layer + the weightless ones after it; None unless Sequential."""
    if type(model).__name__ != "Sequential":
        return None
    blocks: list[list[Any]] = []
    for layer in model.layers:
        if layer.weights or not blocks:
            blocks.append([layer])
        else:
            blocks[-1].append(layer)
    return blocks


def layer_latencies(model: Any, images: np.ndarray, *, runs: int = RUNS,
                    on_progress: Progress | None = None) -> list[LayerLatency] | None:
    """Float32 and int8 p50 of each layer block (calibrated on ``images``, float32 model input); None when
    the model is not a plain stack of layers. ``on_progress``: each block timed."""
    from ai_edge_litert.interpreter import Interpreter

    tf = tfquiet.tensorflow()
    blocks = layer_blocks(model)
    if blocks is None:
        return None
    x = np.asarray(images, dtype=np.float32)
    found = []
    for block in counted(blocks, "timing float32 and int8", on_progress):
        shape = tuple(x.shape[1:])

        def apply(t, block=block):
            for layer in block:
                t = layer(t, training=False)
            return t

        fn = tf.function(apply, input_signature=[tf.TensorSpec((None, *shape), tf.float32)])
        with batch_free_reshapes():  # timed as the exported file runs it
            fn.get_concrete_function()
        calls = []
        for precision in ("float32", "int8"):
            converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
            if precision == "int8":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = lambda x=x: ([x[i:i + 1]] for i in range(len(x)))
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = converter.inference_output_type = tf.int8
            with tfquiet.quiet(stdout=True):
                interpreter = Interpreter(model_content=converter.convert(), num_threads=1)
                interpreter.allocate_tensors()
            inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
            scale, zero_point = inp["quantization"]
            feed = x[:1] if not scale else np.clip(np.rint(x[:1] / scale + zero_point), -128, 127).astype(inp["dtype"])

            def call(interpreter=interpreter, inp=inp, out=out, feed=feed):
                interpreter.set_tensor(inp["index"], feed)
                interpreter.invoke()
                return interpreter.get_tensor(out["index"])

            calls.append(call)
        found.append(time_layer(" + ".join(type(layer).__name__ for layer in block), shape, *calls, runs=runs))
        x = np.asarray(apply(x))
    return found


def model_latencies(models: Sequence[bytes], image: np.ndarray, *, runs: int = MODEL_RUNS) -> list[float]:
    """p50 in seconds of each float-input TFLite file on one image (batch 1, 1 thread, LiteRT's default XNNPACK),
    timed alternating in one process, so that whole candidates compare with every boundary they add."""
    from ai_edge_litert.interpreter import Interpreter

    feed = np.asarray(image, dtype=np.float32)[None]
    calls = []
    for model in models:
        with tfquiet.quiet():
            interpreter = Interpreter(model_content=model, num_threads=1)
            inp = interpreter.get_input_details()[0]
            if int(inp["shape_signature"][0]) < 0:
                interpreter.resize_tensor_input(inp["index"], feed.shape)
            interpreter.allocate_tensors()

        def call(interpreter=interpreter, index=inp["index"]):
            interpreter.set_tensor(index, feed)
            interpreter.invoke()

        calls.append(call)
    samples = time_alternating(calls, runs=runs, warmup=WARMUP, block=BLOCK)
    return [float(np.median(s)) for s in samples]
