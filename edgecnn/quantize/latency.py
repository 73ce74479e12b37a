"""Latency in float32 and int8: per layer, where int8 gains and where it loses, and of whole candidates.

:func:`time_layer` times one layer's two kernels, each cut out of its file
(:meth:`.tflite_layers.CalibratedTFLite.layer_latencies`,
:meth:`.onnx_layers.CalibratedONNX.layer_latencies`), at batch 1 on 1 thread,
the two alternating in blocks in one process. A layer with few input channels
(the first convolution of an image model) can be several times slower in int8
than in float32 under XNNPACK, which no whole-model figure shows. A layer alone
does not pay the quantize and dequantize ops that keeping it float adds between
its neighbours, so :func:`model_latencies` times whole candidate files too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .. import tfquiet
from ..bench.timing import time_alternating

#: Timed calls per block and precision; alternating blocks of BLOCK calls.
RUNS, BLOCK, WARMUP = 1000, 50, 100
#: Timed calls per whole candidate model (each call runs every layer: fewer are needed than per layer).
MODEL_RUNS = 300


@dataclass(frozen=True)
class LayerLatency:
    """p50 of one layer at batch 1, 1 thread, in seconds."""

    layers: str  # its ops, e.g. "CONV_2D + MAX_POOL_2D" (ONNX: "Conv + MaxPool")
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


def model_latencies(calls: Sequence[Callable[[], Any]], *, runs: int = MODEL_RUNS) -> list[float]:
    """p50 in seconds of each whole-file call (:func:`tflite_call`, :func:`.onnx_layers.onnx_call`), timed
    alternating in one process, so that whole candidates compare with every boundary they add."""
    samples = time_alternating(calls, runs=runs, warmup=WARMUP, block=BLOCK)
    return [float(np.median(s)) for s in samples]


def tflite_call(model: bytes, image: np.ndarray) -> Callable[[], Any]:
    """One call of a float-input TFLite file on one image: batch 1, 1 thread, LiteRT's default XNNPACK."""
    from ai_edge_litert.interpreter import Interpreter

    feed = np.asarray(image, dtype=np.float32)[None]
    with tfquiet.quiet():
        interpreter = Interpreter(model_content=model, num_threads=1)
        inp = interpreter.get_input_details()[0]
        if int(inp["shape_signature"][0]) < 0:
            interpreter.resize_tensor_input(inp["index"], feed.shape)
        interpreter.allocate_tensors()

    def call():
        interpreter.set_tensor(inp["index"], feed)
        interpreter.invoke()

    return call
