"""TFLite exports (float32, float16, dynamic-range, full int8) for the LiteRT runtime.

All four convert the same dynamic-batch ``tf.function``, so every file takes a
batch of N images (the interpreter starts at N=1; resize its input to run more).
Every file carries its model card (class names, preprocessing) as a metadata entry.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .. import tfquiet
from ..convert.tflite import converter, finished, representative
from ..model import layer_names
from .float_ops import float_ops, float_ops_note, refused_ops

if TYPE_CHECKING:
    from ..convert.source import ExportSource


def _convert(source: ExportSource, path: Path, card: dict, configure: Callable | None = None) -> dict:
    made = converter(source, configure)
    with tfquiet.quiet(stdout=True):
        model = made.convert()
    path.write_bytes(finished(model, card))
    return describe(path)


def export_float32(source: ExportSource, path: Path, card: dict) -> dict:
    return _convert(source, path, card)


def export_float16(source: ExportSource, path: Path, card: dict) -> dict:
    """Float16 weights, computed in float32 on CPUs (half the size, same results to ~1e-3)."""
    def configure(tf, converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]

    return _convert(source, path, card, configure)


def export_dynamic(source: ExportSource, path: Path, card: dict) -> dict:
    """Dynamic-range quantization: int8 weights, float activations, no calibration needed."""
    return _convert(source, path, card,
                    lambda tf, converter: setattr(converter, "optimizations", [tf.lite.Optimize.DEFAULT]))


def export_int8(source: ExportSource, path: Path, card: dict) -> dict:
    """int8, with the layers mixed precision keeps float (when the source sets an accuracy budget).

    Mixed precision: float input and output, quantized inside the file, whatever
    the mix (even none), so the file's interface never depends on which layers
    a machine's timing kept float. No budget (``--all-int8``): int8 builtins
    only, int8 input and output tensors, for integer-only targets.
    """
    if source.max_accuracy_drop is None:
        return export_full_int8(source, path, card)
    from ..quantize import choose_tflite_int8

    # diagnose=False: each layer alone is measured only when the budget needs the search (explain measures all)
    choice = choose_tflite_int8(source, source.max_accuracy_drop, measure_latency=source.measure_latency,
                                diagnose=False, on_progress=source.on_progress)
    path.write_bytes(finished(choice.model, card))
    return {**describe(path), "calibration": source.calibration_info(),
            **choice.manifest_fields(source.validation_source()),
            **({"note": choice.note()} if choice.note() else {})}


def export_full_int8(source: ExportSource, path: Path, card: dict) -> dict:
    """Full-integer quantization: int8 builtins only, int8 input and output tensors."""
    def configure(tf, converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative(source.calibration())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8

    return {**_convert(source, path, card, configure), "calibration": source.calibration_info()}


def export_int16x8(source: ExportSource, path: Path, card: dict) -> dict:
    """int16 activations, int8 weights: for models whose activations int8 cannot hold within an accuracy budget.

    Float input and output (quantized inside the file); LiteRT runs it on its
    reference kernels (XNNPACK has no int16x8), so it is for accuracy, not speed.
    Every op int16x8 when the converter can; when it refuses an op (HARD_SWISH in
    MobileNetV3) the model is converted again with the converter's float fallback,
    and the ops left float are read back from the file into ``float_ops`` (op, count,
    layers, reason) and a ``note``, so a partly float file is never passed off as int16x8.
    A model the strict conversion takes gets exactly today's file and fields.
    """
    def configure(fallback: bool) -> Callable:
        def apply(tf, converter) -> None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative(source.calibration())
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                *([tf.lite.OpsSet.TFLITE_BUILTINS] if fallback else [])]
        return apply

    try:
        details = _convert(source, path, card, configure(fallback=False))
        return {**details, "calibration": source.calibration_info()}
    except Exception as exc:  # the converter raises RuntimeError/ConverterError; only a refused op is retried
        refused = refused_ops(exc)
        if not refused:
            raise
    details = _convert(source, path, card, configure(fallback=True))  # its failure propagates as any other
    ops = float_ops(path, refused, layer_names(source.model))
    return {**details, "calibration": source.calibration_info(), "float_ops": ops,
            "note": float_ops_note(ops, refused)}


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
