"""The per-layer quantization error both formats report: SQNR per channel, the median over channels."""
from __future__ import annotations

import numpy as np


def channel_nsr(real: np.ndarray, approx: np.ndarray, axis: int) -> float:
    """Median over live channels (``axis``) of quantization noise power / float signal power.

    Per channel, then the median: a per-tensor scale ruined by one huge channel
    drowns all the others, which a whole-tensor SQNR would hide behind that
    channel's signal; the median is not thrown by one channel (a logit) whose
    float values are all near zero.
    """
    real = np.moveaxis(np.asarray(real, dtype=np.float64), axis, -1)
    noise = np.moveaxis(np.asarray(approx, dtype=np.float64), axis, -1) - real
    axes = tuple(range(real.ndim - 1))
    signal = np.mean(real ** 2, axis=axes)
    power = np.mean(noise ** 2, axis=axes)
    live = signal > 0
    return float(np.median(power[live] / signal[live])) if live.any() else 0.0


def sqnr_db(nsr: float) -> float:
    """Noise-to-signal power ratio in decibels of signal over noise (no noise at all: 120 dB)."""
    return -10.0 * float(np.log10(max(nsr, 1e-12)))
