"""Building blocks of ``edgecnn bench``: timing statistics, the per-case worker
process, model facts (parameters, MACs, TFLite arena) and result writers.

The orchestration (which models, which cases, ratios) lives in :mod:`edgecnn.bench`.
"""
