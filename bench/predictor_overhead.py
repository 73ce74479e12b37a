#!/usr/bin/env python3
"""Predictor overhead per input kind: float [0, 1] images, uint8 images, the raw runtime call.

    python bench/predictor_overhead.py [BUNDLE] [--runs 3000] [--out bench/PREDICTOR.md]

For every export of the bundle (default models/fashion-cnn), at batch 1 and 1
thread, one process times three calls alternately, image after image: the
Predictor on float32 images in [0, 1] (as Keras users pass them), the Predictor
on uint8 images, and the bare runtime call on input already in the model's
dtype. Alternation keeps drift in the machine's load out of the ratios.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edgecnn.bench.timing import time_alternating  # noqa: E402
from edgecnn.bundle import read_manifest  # noqa: E402
from edgecnn.datasets.fashion_mnist import load_dataset  # noqa: E402
from edgecnn.fileio import write_text  # noqa: E402
from edgecnn.runtime import Predictor  # noqa: E402
from edgecnn.versions import machine, utc_now  # noqa: E402

#: Goals of issue 13: Predictor p50 / raw call p50.
GOALS = {"float": 1.15, "uint8": 1.10}


def measure(path: Path, images: np.ndarray, runs: int) -> dict:
    predictor = Predictor.load(path, threads=1)
    pixels = [images[i:i + 1] for i in range(len(images))]
    floats = [p.astype(np.float32) / np.float32(255.0) for p in pixels]
    natives = [predictor.prepare(p) for p in pixels]
    run = predictor.runtime.run_native
    state = {"float": 0, "uint8": 0, "raw": 0}

    def call(kind, inputs, fn):
        def one():
            i = state[kind] = (state[kind] + 1) % len(inputs)
            fn(inputs[i])
        return one

    samples = time_alternating([call("float", floats, predictor.predict), call("uint8", pixels, predictor.predict),
                                call("raw", natives, run)], runs=runs, warmup=200)
    p50 = {k: float(np.median(s)) for k, s in zip(("float", "uint8", "raw"), samples)}
    return {"p50_s": p50, "ratio": {k: p50[k] / p50["raw"] for k in GOALS}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", default=REPO / "models" / "fashion-cnn", type=Path)
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--out", type=Path, help="also write the table, with the machine, to this markdown file")
    args = parser.parse_args()
    images = load_dataset(allow_download=False).x_test[:64]
    load_start = os.getloadavg()
    lines = ["| export | float input | uint8 input | raw call | float / raw (goal ≤ 1.15x) | uint8 / raw (goal ≤ 1.10x) |",
             "|---|---|---|---|---|---|"]
    missed = 0
    for name, entry in read_manifest(args.bundle)["exports"].items():
        r = measure(args.bundle / entry["file"], images, args.runs)
        marks = {k: "PASS" if r["ratio"][k] <= goal else "MISS" for k, goal in GOALS.items()}
        missed += list(marks.values()).count("MISS")
        p = r["p50_s"]
        lines.append(f"| {name} | {p['float'] * 1e6:.1f} µs | {p['uint8'] * 1e6:.1f} µs | {p['raw'] * 1e6:.1f} µs | "
                     f"{r['ratio']['float']:.3f}x {marks['float']} | {r['ratio']['uint8']:.3f}x {marks['uint8']} |")
        print(lines[-1], flush=True)
    if args.out:
        m = machine()
        write_text(args.out, "\n".join([
            "# Predictor overhead", "",
            f"Written by `python bench/predictor_overhead.py` on {utc_now()}: batch 1, 1 thread, p50 of {args.runs} "
            "calls of each kind, alternating image by image in one process (Fashion-MNIST test images).", "",
            f"Machine: {m['cpu']} ({m['cores']} logical cores), Python {m['python']}; load average (1, 5, 15 min) "
            f"at start {', '.join(f'{v:.2f}' for v in load_start)}, at end "
            f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}.", "", *lines, ""]))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
