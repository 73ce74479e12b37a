"""Quantization that explains itself: per-layer error and latency, and mixed precision chosen by measurement.

:func:`choose_tflite_int8` and :func:`choose_onnx_int8` calibrate the model
once, measure every weighted layer (SQNR of the quantization it adds, its
float32 and int8 latency, and for explain's table the validation accuracy that
keeping it float recovers) and keep in float the layers that the accuracy
budget or their own speed call for, with one search for both (see :mod:`.mixed`).
:data:`CHOOSERS` maps each int8 format to its function. Imports TensorFlow:
export-side only.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .. import tfquiet
from ..progress import Progress
from .mixed import DEFAULT_MAX_ACCURACY_DROP, Evaluator, LayerReport, MixedChoice, choose, worst_first

if TYPE_CHECKING:
    from ..convert.source import ExportSource

#: Held-out images the per-layer SQNR is measured on (the first of the validation split).
SQNR_IMAGES = 200

__all__ = ["CHOOSERS", "DEFAULT_MAX_ACCURACY_DROP", "LayerReport", "MixedChoice", "choose_onnx_int8",
           "choose_tflite_int8", "worst_first"]


def _validation(source: ExportSource, run: Callable | None = None) -> Evaluator:
    """The validation split, judged against the Keras model's own probabilities on it."""
    x_val, y_val = source.validation()
    with tfquiet.quiet():
        float_probs = np.asarray(source.model.predict(x_val, batch_size=500, verbose=0), dtype=np.float32)
    return Evaluator(x_val, y_val, float_probs, run)


#: Standard errors of the validation agreement a mix must keep above verify's int8 gate. The test set is another
#: sample: a mix at the gate on validation misses it there about half the time (MobileNetV3Small: 98.59% and
#: 98.70% on 2,000 validation images, 97.86% and 98.17% on the test set). With 2 standard errors of one sample
#: and the test set of the same size, a file whose true agreement sits at the target passes verify 92% of the time.
AGREEMENT_MARGIN_SE = 2.0


def int8_agreement_gate() -> float:
    """verify's int8 agreement gate (near ties not counted), as a fraction. Read when a model is measured:
    importing verify here would load it with every CLI start."""
    from ..verify.gates import GATES

    return GATES["int8"].min_agreement_pct / 100


def agreement_target(float_probs: np.ndarray) -> float:
    """The validation agreement a mix export accepts must reach, so that export's budget and verify's gates are one
    contract: verify's int8 gate plus :data:`AGREEMENT_MARGIN_SE` standard errors of the validation images the
    gate counts (those the float model is not near a tie on)."""
    from ..metrics import confident

    gate, counted = int8_agreement_gate(), int(confident(float_probs).sum())
    return gate if not counted else min(1.0, gate + AGREEMENT_MARGIN_SE * math.sqrt(gate * (1 - gate) / counted))


def _named(name: str, on_progress: Progress | None) -> Progress | None:
    """``on_progress`` with the format before each ``what``: export and explain measure both formats."""
    return None if on_progress is None else lambda what, done, total: on_progress(f"{name}: {what}", done, total)


def _measured(source: ExportSource, calibrated, evaluate: Evaluator, call_of: Callable[[bytes, np.ndarray], Callable],
              *, measure_latency: bool, latency_runs: int | None, agreement_gate: bool,
              on_progress: Progress | None) -> dict[str, Any]:
    """What :func:`.mixed.choose` takes beyond the layers, alike for both formats: each layer's latency and a
    timer of whole files (``call_of(model, image)`` makes one batch-1 call), and the agreement contract."""
    from .latency import RUNS, model_latencies

    found: dict[str, Any] = {}
    if measure_latency:
        image = evaluate.x[0]
        found["latencies"] = calibrated.layer_latencies(source.calibration()[:1], runs=latency_runs or RUNS,
                                                        on_progress=on_progress)
        found["time_models"] = lambda models: model_latencies([call_of(model, image) for model in models])
    if agreement_gate:
        found.update(min_agreement=agreement_target(evaluate.float_probs), agreement_gate=int8_agreement_gate())
    return found


def choose_tflite_int8(source: ExportSource, max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP, *,
                       measure_latency: bool = True, latency_runs: int | None = None,
                       agreement_gate: bool = True, diagnose: bool = True,
                       on_progress: Progress | None = None) -> MixedChoice:
    """Measure each layer and choose its precision; ``max_accuracy_drop`` in points of validation accuracy (or of
    agreement with float, unlabelled); ``agreement_gate``: meet verify's int8 agreement gate with it (False: the
    budget alone); ``diagnose``: measure every layer's harm even when all-int8 meets the budget (see
    :func:`.mixed.choose`); ``on_progress`` hears each layer measured, its ``what`` led by ``tflite-int8: ``."""
    from .latency import tflite_call
    from .tflite_layers import CalibratedTFLite

    on_progress = _named("tflite-int8", on_progress)
    evaluate = _validation(source)
    calibrated = CalibratedTFLite(source, evaluate.x[:SQNR_IMAGES])
    measured = _measured(source, calibrated, evaluate, tflite_call, measure_latency=measure_latency,
                         latency_runs=latency_runs, agreement_gate=agreement_gate, on_progress=on_progress)
    return choose(calibrated, evaluate, max_accuracy_drop, cpu_ops=calibrated.cpu_ops(), diagnose=diagnose,
                  on_progress=on_progress, **measured)


def choose_onnx_int8(source: ExportSource, max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP, *,
                     measure_latency: bool = True, latency_runs: int | None = None,
                     agreement_gate: bool = True, diagnose: bool = True,
                     on_progress: Progress | None = None) -> MixedChoice:
    """The same for ``onnx-int8``, each layer timed alone in onnxruntime (a thin first convolution, the float
    stem, is the one its int8 kernel tends to lose on; the measurement decides)."""
    from .onnx_layers import CalibratedONNX, onnx_call, run_onnx

    on_progress = _named("onnx-int8", on_progress)
    evaluate = _validation(source, run_onnx)
    calibrated = CalibratedONNX(source, evaluate.x[:SQNR_IMAGES])
    measured = _measured(source, calibrated, evaluate, onnx_call, measure_latency=measure_latency,
                         latency_runs=latency_runs, agreement_gate=agreement_gate, on_progress=on_progress)
    return choose(calibrated, evaluate, max_accuracy_drop, diagnose=diagnose, on_progress=on_progress, **measured)


#: The int8 formats mixed precision serves, and the function that measures and chooses for each.
CHOOSERS: dict[str, Callable[..., MixedChoice]] = {"tflite-int8": choose_tflite_int8, "onnx-int8": choose_onnx_int8}
