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
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np

from .. import tfquiet
from ..batch_free import batch_free_reshapes
from ..bench.timing import time_alternating

#: Timed calls per block and precision; alternating blocks of BLOCK calls.
RUNS, BLOCK, WARMUP = 1000, 50, 100

#: ``on_progress(what, done, total)`` of the per-layer measurements: ``done`` of ``total`` layers, from 0 to
#: ``total`` for each ``what``. A real network (EfficientNetB0: about 80 layers, seconds each) takes minutes.
Progress = Callable[[str, int, int], None]
T = TypeVar("T")


def counted(items: Sequence[T], what: str, on_progress: Progress | None) -> Iterator[T]:
    """``items`` one by one, telling ``on_progress`` 0 first and then each one done (nothing when empty)."""
    if on_progress is None or not items:
        yield from items
        return
    on_progress(what, 0, len(items))
    for done, item in enumerate(items, 1):
        yield item
        on_progress(what, done, len(items))


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
