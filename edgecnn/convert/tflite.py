"""Keras -> TFLite: the converter of the source's serving function, and calibration images as the converter reads them.

The function's variables are handed to the converter in a ``tf.Module`` so it
freezes them into the file (Keras 3 variables are not tracked by the model for TF).
Export and mixed precision (TensorFlow's QuantizationDebugger) convert through the same converter.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from .. import tfquiet

if TYPE_CHECKING:
    from .source import ExportSource


def converter(source: ExportSource, configure: Callable | None = None):
    """A TFLite converter of the source's serving function, configured by ``configure(tf, converter)``."""
    tf = tfquiet.tensorflow()
    serve = source.serving_function()
    holder = tf.Module()
    holder.weights = [variable.value for variable in source.model.variables]
    with tfquiet.quiet(stdout=True):
        made = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], holder)
    if configure is not None:
        configure(tf, made)
    return made



def representative(images: np.ndarray) -> Callable:
    """The converter's representative dataset: one image per sample, in order (calibration is deterministic)."""
    def samples():
        for i in range(len(images)):
            yield [images[i:i + 1]]
    return samples
