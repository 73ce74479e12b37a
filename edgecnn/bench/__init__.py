"""``edgecnn bench``: latency, throughput, memory and size of each export, next to Keras and the raw runtimes.

The entry points are :func:`bench` and :func:`compare`; the options live in
:mod:`.options`, target discovery in :mod:`.targets`, the per-case process in
:mod:`.worker` (timing loop in :mod:`.timing`), model facts in :mod:`.facts`,
headline ratios in :mod:`.ratios` and the writers in :mod:`.output`.
"""
from __future__ import annotations

from . import options, targets
from .compare import COMPARE_PLOT, Comparison, compare
from .options import FULL, QUICK, BenchConfig, parse_options
from .ratios import compute_ratios, format_ratios
from .run import BenchReport, bench
from .targets import BenchTarget, find_targets

__all__ = ["COMPARE_PLOT", "FULL", "QUICK", "BenchConfig", "BenchReport", "BenchTarget", "Comparison", "bench",
           "compare", "compute_ratios", "find_targets", "format_ratios", "parse_options"]
