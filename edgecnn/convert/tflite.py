"""Keras -> TFLite: the converter of the source's serving function, and calibration images as the converter reads them.

The function's variables are handed to the converter in a ``tf.Module`` so it
freezes them into the file (Keras 3 variables are not tracked by the model for TF).
Export and mixed precision (TensorFlow's QuantizationDebugger) convert through the same converter.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from .. import tfquiet
from ..model_card import add_tflite_card
from .source import INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:
    from .source import ExportSource

#: The signature a converter lowering through a SavedModel writes, and LiteRT's signature runner looks up by default.
SIGNATURE_KEY = "serving_default"


def converter(source: ExportSource, configure: Callable | None = None):
    """A TFLite converter of the source's serving function, configured by ``configure(tf, converter)``.

    It converts the frozen function directly: the default path saves it as a
    SavedModel and loads it back twice on every conversion, which took 60-70% of
    each one (MobileNetV3Small 4.6 s -> 1.4 s, EfficientNetB0 11.7 s -> 3.1 s) for
    the same operators, weights and outputs. That path's one addition, the
    signature, is written by :func:`finished`.
    """
    tf = tfquiet.tensorflow()
    serve = source.serving_function()
    holder = tf.Module()
    holder.weights = [variable.value for variable in source.model.variables]
    with tfquiet.quiet(stdout=True):
        made = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], holder)
    made.experimental_lower_to_saved_model = False
    if configure is not None:
        configure(tf, made)
    return made


def finished(model: bytes, card: dict) -> bytes:
    """The converted flatbuffer as export writes it, read and rewritten once: with its :data:`SIGNATURE_KEY`
    signature (``input`` -> ``probabilities``; the output tensor named as there and in the ONNX files, so LiteRT's
    signature runner finds the model) and ``card`` (see :mod:`edgecnn.model_card`)."""
    from ai_edge_litert.tools import flatbuffer_utils

    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    _sign(tree)
    add_tflite_card(tree, card)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree))


def _sign(tree) -> None:
    from ai_edge_litert import schema_py_generated as schema

    graph = tree.subgraphs[0]  # one input, one output: the serving function's
    graph.tensors[graph.outputs[0]].name = OUTPUT_NAME
    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = SIGNATURE_KEY, 0
    signature.inputs = [_tensor_map(INPUT_NAME, graph.inputs[0])]
    signature.outputs = [_tensor_map(OUTPUT_NAME, graph.outputs[0])]
    tree.signatureDefs = [signature]


def _tensor_map(name: str, index: int):
    from ai_edge_litert import schema_py_generated as schema

    entry = schema.TensorMapT()
    entry.name, entry.tensorIndex = name, int(index)
    return entry


def representative(images: np.ndarray) -> Callable:
    """The converter's representative dataset: one image per sample, in order (calibration is deterministic)."""
    def samples():
        for i in range(len(images)):
            yield [images[i:i + 1]]
    return samples
