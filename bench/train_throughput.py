#!/usr/bin/env python3
"""Training throughput: one epoch of edgecnn's training path vs the reference's plain ``model.fit``.

    python bench/train_throughput.py              # 5 epochs of each, alternating (~3 minutes on 2 cores)

Both sides train the same architecture on the same in-memory Fashion-MNIST
arrays (48,000 training / 12,000 validation images, batch 32, one epoch, with
validation). The reference side is the textbook code: ``model.fit`` with a
ModelCheckpoint (best only) and EarlyStopping, nothing else (on float32 arrays:
the textbook's float64 ones would only slow the reference down). The edgecnn side is
``edgecnn.train.train`` (seeded, deterministic ops, atomic best checkpoint);
on both sides the epoch time is the ``model.fit`` call alone (edgecnn's timed by
wrapping it), so data loading, conversion, the test evaluation and the plots
are reported apart, as the whole call. Each epoch runs in a fresh
process (TensorFlow's op determinism is process-wide) and the sides alternate,
so drift in the machine's load hits both. Writes bench/TRAINING.md and
bench/training.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

GOAL = 1.0  # edgecnn's epoch time / the reference's: "no worse than"


def epoch_edgecnn(out: Path) -> dict:
    """`edgecnn.train.train` for one epoch, its ``model.fit`` call timed by a wrapper (the same bounds as the
    reference's timer: the arrays are ready, the callbacks run)."""
    from edgecnn import train as edgecnn_train

    fit_seconds: list[float] = []
    build = edgecnn_train.build_model

    def build_timed(*args, **kwargs):
        model = build(*args, **kwargs)
        fit = model.fit

        def timed_fit(*fit_args, **fit_kwargs):
            started = time.perf_counter()
            try:
                return fit(*fit_args, **fit_kwargs)
            finally:
                fit_seconds.append(time.perf_counter() - started)

        model.fit = timed_fit
        return model

    edgecnn_train.build_model = build_timed
    started = time.perf_counter()
    edgecnn_train.train(edgecnn_train.TrainConfig(out=out, epochs=1))
    return {"epoch_s": fit_seconds[0], "call_s": time.perf_counter() - started}


def epoch_reference(out: Path) -> dict:
    """The reference notebook's training cell, on the same arrays (its own split and callbacks)."""
    from edgecnn import tfquiet
    from edgecnn.datasets import load_dataset, train_val_split
    from edgecnn.model import build_model

    keras = tfquiet.keras()
    started = time.perf_counter()
    data = load_dataset()
    x = (data.x_train.reshape(-1, 28, 28, 1) / 255.0).astype("float32")
    x_train, y_train, x_val, y_val = train_val_split(x, data.y_train, seed=42)
    model = build_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [keras.callbacks.ModelCheckpoint(str(out / "best.keras"), save_best_only=True),
                 keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)]
    fit_started = time.perf_counter()
    with tfquiet.quiet():
        model.fit(x_train, y_train, epochs=1, batch_size=32, validation_data=(x_val, y_val),
                  callbacks=callbacks, verbose=2)
    return {"epoch_s": time.perf_counter() - fit_started, "call_s": time.perf_counter() - started}


def one(side: str) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"edgecnn-train-{side}-") as tmp:
        return (epoch_edgecnn if side == "edgecnn" else epoch_reference)(Path(tmp))


def run_side(side: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--one", side], cwd=REPO, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"the {side} epoch failed: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="Epochs per side (each in a fresh process).")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--one", choices=("edgecnn", "reference"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one)))
        return 0

    from edgecnn.fileio import write_json, write_text
    from edgecnn.versions import machine

    runs: dict[str, list[dict]] = {"reference": [], "edgecnn": []}
    load_start = os.getloadavg()
    for i in range(args.repeats):
        for side in (("reference", "edgecnn") if i % 2 == 0 else ("edgecnn", "reference")):
            print(f"epoch {i + 1}/{args.repeats}: {side}...", file=sys.stderr)
            runs[side].append(run_side(side))
    load_end = os.getloadavg()
    median = {side: statistics.median(r["epoch_s"] for r in rs) for side, rs in runs.items()}
    ratio = median["edgecnn"] / median["reference"]
    spread = {side: (min(r["epoch_s"] for r in rs), max(r["epoch_s"] for r in rs)) for side, rs in runs.items()}
    best_ratio = spread["edgecnn"][0] / spread["reference"][0]
    passed = ratio <= GOAL
    m = machine()
    record = {"machine": m, "runs": runs, "median_epoch_s": median, "ratio": ratio, "best_of_n_ratio": best_ratio,
              "goal": GOAL, "passed": passed,
              "load_average": {"start": load_start, "end": load_end}}
    write_json(args.out / "training.json", record)
    per_run = {side: ", ".join(f"{r['epoch_s']:.1f}" for r in rs) for side, rs in runs.items()}
    lines = [
        "# Training throughput: edgecnn vs the reference's model.fit", "",
        f"Written by `python bench/train_throughput.py --repeats {args.repeats}`; every figure comes from that run.", "",
        f"- Machine: {m['cpu']} ({m['cores']} logical cores), {m['system']}, Python {m['python']}, "
        f"TensorFlow {m['packages'].get('tensorflow')}, Keras {m['packages'].get('keras')}",
        f"- Load average at start {', '.join(f'{v:.2f}' for v in load_start)}, "
        f"at end {', '.join(f'{v:.2f}' for v in load_end)}",
        "- One epoch = 48,000 training images at batch 32 plus validation on 12,000, best-model checkpoint; "
        "each epoch in a fresh process, the two sides alternating.", "",
        "| side | epoch (median) | each run | whole call (median) |", "|---|---|---|---|",
        f"| reference `model.fit` | {median['reference']:.1f} s | {per_run['reference']} s | "
        f"{statistics.median(r['call_s'] for r in runs['reference']):.1f} s |",
        f"| edgecnn `train` | {median['edgecnn']:.1f} s | {per_run['edgecnn']} s | "
        f"{statistics.median(r['call_s'] for r in runs['edgecnn']):.1f} s |", "",
        f"**Ratio edgecnn / reference, median epochs: {ratio:.3f}x (goal ≤ {GOAL:g}x): {'PASS' if passed else 'MISS'}.**",
        "",
        f"Fastest epoch of each side (the run least disturbed by other work): {spread['edgecnn'][0]:.1f} s / "
        f"{spread['reference'][0]:.1f} s = {best_ratio:.3f}x.", "",
        "The whole call adds, for the reference, loading the data and building the model; for edgecnn also "
        "the test-set evaluation, metrics, plots and summary that `edgecnn train` writes.",
    ]
    if not passed:
        overlap = spread["reference"][1] >= spread["edgecnn"][0]
        lines += ["", f"Missed by {100 * (ratio - 1):.1f}%: the epochs ranged {spread['edgecnn'][0]:.1f}-"
                      f"{spread['edgecnn'][1]:.1f} s (edgecnn) and {spread['reference'][0]:.1f}-"
                      f"{spread['reference'][1]:.1f} s (reference); "
                      + ("the ranges overlap, so the gap is within this machine's run-to-run noise "
                         "(rerun with more --repeats on a quiet machine)." if overlap else
                         "the ranges do not overlap: every edgecnn epoch was slower.")]
    path = write_text(args.out / "TRAINING.md", "\n".join(lines) + "\n")
    print(f"reference {median['reference']:.1f} s, edgecnn {median['edgecnn']:.1f} s per epoch: "
          f"ratio {ratio:.3f}x ({'PASS' if passed else 'MISS'}) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
