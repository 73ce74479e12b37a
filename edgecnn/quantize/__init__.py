"""Quantization that explains itself: per-layer error and latency, and mixed precision chosen by measurement.

:func:`choose_tflite_int8` calibrates the model once, measures every weighted
layer (SQNR of its int8 output, the validation accuracy that keeping it float
recovers, its float32 and int8 latency) and keeps in float the layers that the
accuracy budget or their own speed call for (see :mod:`.mixed`). Imports
TensorFlow: export-side only.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import tfquiet
from .mixed import DEFAULT_MAX_ACCURACY_DROP, Evaluator, LayerReport, MixedChoice, choose, worst_first

if TYPE_CHECKING:
    from ..export.source import ExportSource

#: Held-out images the per-layer SQNR is measured on (the first of the validation split).
SQNR_IMAGES = 200
#: Calibration images the per-layer latency blocks are calibrated on.
LATENCY_IMAGES = 200

__all__ = ["DEFAULT_MAX_ACCURACY_DROP", "LayerReport", "MixedChoice", "choose_tflite_int8", "worst_first"]


def choose_tflite_int8(source: ExportSource, max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP, *,
                       measure_latency: bool = True, latency_runs: int | None = None) -> MixedChoice:
    """Measure each layer and choose its precision; ``max_accuracy_drop`` in points of validation accuracy."""
    from .latency import RUNS, layer_latencies
    from .tflite_layers import CalibratedTFLite

    x_val, y_val = source.validation()
    with tfquiet.quiet():
        float_probs = np.asarray(source.model.predict(x_val, batch_size=500, verbose=0), dtype=np.float32)
    calibrated = CalibratedTFLite(source, x_val[:SQNR_IMAGES])
    latencies = (layer_latencies(source.model, source.calibration()[:LATENCY_IMAGES], runs=latency_runs or RUNS)
                 if measure_latency else None)
    return choose(calibrated, Evaluator(x_val, y_val, float_probs), max_accuracy_drop, latencies)
