"""Latency statistics and the timing loop, independent of any runtime.

The loop times one call at a time with ``perf_counter`` and the garbage
collector paused (as :mod:`timeit` does), so a collection triggered by earlier
allocations does not land in a random sample. An optional time budget caps
each case, warm-up included, so slow cases (Keras ``model.predict``, int16x8 at batch 32)
run as many calls as fit in it and the whole benchmark has a known bound.
"""
from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np

Clock = Callable[[], float]


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one call (one batch), in seconds."""

    p50: float
    p90: float
    p99: float
    mean: float
    std: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Timing:
    """Everything measured for one runtime, batch size and thread count."""

    load_s: float
    first_inference_s: float
    latency: LatencyStats
    images_per_s: float
    runs: int
    warmup: int


def summarize(samples: Sequence[float]) -> LatencyStats:
    """Percentiles (linear interpolation), mean and population std of the samples."""
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("latency statistics need at least one sample")
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return LatencyStats(float(p50), float(p90), float(p99), float(values.mean()), float(values.std()))


#: Timed runs kept at the least when a time budget stops a case early (``bench --quick`` keeps fewer).
MIN_BUDGET_RUNS = 30
#: The part of a case's time budget its warm-up may take: enough to settle caches and thread pools.
WARMUP_SHARE = 0.25


def time_alternating(calls: Sequence[Callable[[], Any]], *, runs: int, warmup: int = 0, block: int = 1,
                     max_seconds: float | None = None, min_runs: int = MIN_BUDGET_RUNS,
                     clock: Clock = time.perf_counter) -> np.ndarray:
    """Seconds of each timed call, shape (len(calls), runs).

    Each round makes ``block`` consecutive calls of every function, in forward
    then reversed order on alternate rounds, so drift in the machine's load hits
    all of them alike. ``block=1`` compares calls sharing one model (the Predictor
    against its bare runtime call); a larger block lets each of two different
    models run with warm caches (int8 against float32). After ``warmup`` untimed
    calls of each come ``runs`` timed ones. ``max_seconds`` is the whole budget of
    both, so a case costs about that much however slow its calls: the warm-up stops
    after :data:`WARMUP_SHARE` of it (never before one call each), the timed rounds
    once it is spent (never under ``min_runs``).
    """
    if runs < 1 or warmup < 0 or block < 1:
        raise ValueError(f"need runs >= 1, warmup >= 0 and block >= 1, got {runs}, {warmup}, {block}")
    began = clock()
    for call in calls:
        for done in range(warmup):
            if max_seconds is not None and done and clock() - began >= max_seconds * WARMUP_SHARE:
                break
            call()
    samples = np.empty((len(calls), runs), dtype=np.float64)
    order = list(enumerate(calls))
    least = min(runs, min_runs)
    done = rounds = 0
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        while done < runs:
            size = min(block, runs - done)
            for which, call in (order if rounds % 2 == 0 else order[::-1]):
                for i in range(done, done + size):
                    start = clock()
                    call()
                    samples[which, i] = clock() - start
            done, rounds = done + size, rounds + 1
            if max_seconds is not None and done >= least and clock() - began >= max_seconds:
                return samples[:, :done]
    finally:
        if gc_was_on:
            gc.enable()
    return samples


def time_calls(call: Callable[[], Any], *, runs: int, warmup: int = 0, max_seconds: float | None = None,
               min_runs: int = MIN_BUDGET_RUNS, clock: Clock = time.perf_counter) -> np.ndarray:
    """Call ``call`` ``warmup`` times untimed, then ``runs`` times timed; the seconds of each timed call."""
    return time_alternating([call], runs=runs, warmup=warmup, max_seconds=max_seconds, min_runs=min_runs,
                            clock=clock)[0]


def measure(load: Callable[[], Callable[[], Any]], *, batch_size: int, runs: int, warmup: int,
            max_seconds: float | None = None, min_runs: int = MIN_BUDGET_RUNS,
            clock: Clock = time.perf_counter) -> Timing:
    """Time ``load()`` (which returns the inference call), the first call, then the warmed-up runs."""
    start = clock()
    call = load()
    load_s = clock() - start
    start = clock()
    call()
    first_s = clock() - start
    samples = time_calls(call, runs=runs, warmup=warmup, max_seconds=max_seconds, min_runs=min_runs, clock=clock)
    stats = summarize(samples)
    return Timing(load_s, first_s, stats, batch_size / stats.mean, len(samples), warmup)
