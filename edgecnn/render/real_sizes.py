"""bench/RESULTS.md's table of latency on real sizes, from what ``bench/real_sizes.py`` recorded.

bench/run_benchmarks.py rewrites RESULTS.md and keeps this block as it was:
the two scripts run at different times, each saying its own machine.
"""
from __future__ import annotations

from ..bench.output import seconds

START, END = "<!-- real-sizes:start -->", "<!-- real-sizes:end -->"
#: The input size of the Keras applications timed (their ImageNet size).
SIZE = 224


def render(record: dict) -> str:
    """The block: one row per model, p50 per format and each int8 / float32 ratio, then the machine."""
    m = record["machine"]
    lines = [f"Written by `python bench/real_sizes.py` on {record['created']}: p50 of the Predictor at batch 1, 1 thread, "
             f"{record['runs']} calls of each file, float32 and int8 alternating in blocks of 50 in one process. "
             f"Keras applications at {SIZE}x{SIZE}x3 with `weights=None` and 1,000 classes, every layer int8, "
             "calibrated on random pixels; the reference CNN is the committed bundle's.", "",
             "| model | tflite | tflite-int8 | int8 / fp32 | onnx | onnx-int8 | int8 / fp32 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in record["models"].items():
        lines.append(f"| {name} | {seconds(row['tflite']['p50_s'])} | {seconds(row['tflite-int8']['p50_s'])} | "
                     f"{row['tflite-int8']['int8_over_float32']:.2f}x | {seconds(row['onnx']['p50_s'])} | "
                     f"{seconds(row['onnx-int8']['p50_s'])} | {row['onnx-int8']['int8_over_float32']:.2f}x |")
    lines += ["", f"Machine: {m['cpu']} ({m['cores']} cores; {', '.join(m['cpu_flags'])})."]
    return "\n".join(lines)
