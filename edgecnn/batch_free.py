"""Trace Keras models with reshapes that do not read the batch, so a dynamic-batch file stays one delegate graph.

Keras writes the batch of a ``Reshape`` or ``Flatten`` output as the input's
run-time size (``ops.shape(x)[0]``), which converts to a SHAPE, STRIDED_SLICE,
PACK chain before each RESHAPE. XNNPACK and the GPU delegate cannot take that
chain, so every Flatten and every squeeze-and-excitation ``Reshape`` splits the
delegated graph (EfficientNetV2B0: 17 XNNPACK partitions). ``-1`` for the batch
says the same thing with a constant shape, and the chain disappears.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def batch_free_reshapes() -> Iterator[None]:
    """While tracing, every Reshape/Flatten whose other dimensions are known reshapes to ``(-1, ...)``."""
    from keras import layers, ops
    from keras.src.ops import operation_utils

    reshape_call, flatten_call = layers.Reshape.call, layers.Flatten.call

    def reshape(self, inputs):
        target = operation_utils.compute_reshape_output_shape(tuple(inputs.shape)[1:], self.target_shape,
                                                              "target_shape")
        if any(d is None or d == -1 for d in target):
            return reshape_call(self, inputs)
        return ops.reshape(inputs, (-1, *target))

    def flatten(self, inputs):
        rest = tuple(inputs.shape)[1:]
        if self._channels_first or not rest or any(not isinstance(d, int) for d in rest):
            return flatten_call(self, inputs)
        return ops.reshape(inputs, (-1, math.prod(rest)))

    layers.Reshape.call, layers.Flatten.call = reshape, flatten
    try:
        yield
    finally:
        layers.Reshape.call, layers.Flatten.call = reshape_call, flatten_call
