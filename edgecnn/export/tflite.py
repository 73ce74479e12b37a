"""TFLite exports (float32, float16, dynamic-range, full int8) for the LiteRT runtime.

All four convert the same dynamic-batch ``tf.function``, so every file takes a
batch of N images (the interpreter starts at N=1; resize its input to run more).
The function's variables are handed to the converter in a ``tf.Module`` so it
freezes them into the file (Keras 3 variables are not tracked by the model for TF).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .. import tfquiet

if TYPE_CHECKING:
    from .source import ExportSource


def _convert(source: ExportSource, path: Path, configure: Callable | None = None) -> dict:
    tf = tfquiet.tensorflow()
    serve = source.serving_function()
    holder = tf.Module()
    holder.weights = [variable.value for variable in source.model.variables]
    with tfquiet.quiet(stdout=True):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], holder)
        if configure is not None:
            configure(tf, converter)
        path.write_bytes(converter.convert())
    return describe(path)


def export_float32(source: ExportSource, path: Path) -> dict:
    return _convert(source, path)


def export_float16(source: ExportSource, path: Path) -> dict:
    """Float16 weights, computed in float32 on CPUs (half the size, same results to ~1e-3)."""
    def configure(tf, converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]

    return _convert(source, path, configure)


def export_dynamic(source: ExportSource, path: Path) -> dict:
    """Dynamic-range quantization: int8 weights, float activations, no calibration needed."""
    return _convert(source, path, lambda tf, converter: setattr(converter, "optimizations", [tf.lite.Optimize.DEFAULT]))


def export_int8(source: ExportSource, path: Path) -> dict:
    """Full-integer quantization: int8 builtins only, int8 input and output tensors."""
    images = source.calibration()

    def representative():
        for i in range(len(images)):
            yield [images[i:i + 1]]

    def configure(tf, converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8

    return {**_convert(source, path, configure), "calibration": source.calibration_info()}


def describe(path: Path) -> dict:
    """Input and output tensors as the LiteRT interpreter reports them (batch -1 becomes ``None``)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    return {"inputs": [_tensor(d) for d in interpreter.get_input_details()],
            "outputs": [_tensor(d) for d in interpreter.get_output_details()]}


def _tensor(detail: dict) -> dict:
    scale, zero_point = detail["quantization"]
    return {
        "name": detail["name"],
        "shape": [None if d < 0 else int(d) for d in detail["shape_signature"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None,
    }
