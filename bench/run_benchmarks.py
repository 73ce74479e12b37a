#!/usr/bin/env python3
"""Reproduce edgecnn's headline comparisons and write bench/RESULTS.md, results.json and latency.png.

    python bench/run_benchmarks.py            # the full run (~10 minutes on 2 cores)
    python bench/run_benchmarks.py --quick    # 200 runs per case, 1 thread

On a fresh checkout it first makes what it measures: trains the reference model
when models/fashion-cnn/model.keras is missing and exports the six formats when
the manifest lacks any. The ONNX exports are also timed in headless Chromium (the
`edgecnn web` page, onnxruntime-web wasm) when Chromium and onnxruntime-web are installed. Every figure in RESULTS.md comes from this run: the
ratios are measured in one run, on one machine, which RESULTS.md describes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from edgecnn import bench as lib  # noqa: E402
from edgecnn.bench.browser import BROWSER_MODE  # noqa: E402
from edgecnn.bench.output import format_markdown, seconds  # noqa: E402
from edgecnn.bundle import MODEL_FILE, read_manifest  # noqa: E402
from edgecnn.fileio import write_json, write_text  # noqa: E402
from edgecnn.render.readme import block_text  # noqa: E402
from edgecnn.render.arm64 import END as ARM64_END, START as ARM64_START  # noqa: E402
from edgecnn.render.real_sizes import END as REAL_SIZES_END, START as REAL_SIZES_START  # noqa: E402
from edgecnn.render.rows import mixed_scores  # noqa: E402

EXPORTS = ("tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8", "tflite-int16x8", "onnx", "onnx-int8", "onnx-ort",
           "onnx-ort-int8")
COLD_MODELS = ("model_int8.tflite", MODEL_FILE)


@dataclass(frozen=True)
class Target:
    """One headline target: a measured ratio compared with its goal."""

    label: str
    goal: float
    at_most: bool  # True: the ratio must be <= goal; False: >= goal

    def passed(self, value: float | None) -> bool:
        return value is not None and (value <= self.goal if self.at_most else value >= self.goal)

    def goal_text(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.goal:g}x"


def edgecnn(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], cwd=REPO, capture_output=True, text=True)
    if check and proc.returncode != 0:
        sys.exit(f"`edgecnn {' '.join(map(str, args))}` failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc


def prepare_bundle(bundle: Path) -> list[str]:
    """Train and export what a fresh checkout lacks; say what was done."""
    done = []
    if not (bundle / MODEL_FILE).is_file():
        print(f"training the reference model into {bundle} (a few minutes)...", file=sys.stderr)
        edgecnn("train", "--out", bundle)
        done.append(f"trained {bundle / MODEL_FILE}")
    listed = read_manifest(bundle).get("exports", {}) if (bundle / "manifest.json").is_file() else {}
    missing = [f for f in EXPORTS if f not in listed or not (bundle / listed[f]["file"]).is_file()]
    if missing:
        print(f"exporting (missing: {', '.join(missing)})...", file=sys.stderr)
        edgecnn("export", "--model", bundle / MODEL_FILE)
        done.append(f"exported all formats (missing were: {', '.join(missing)})")
    if any("verify" not in entry for entry in read_manifest(bundle)["exports"].values()):
        print("verifying the exports (for the accuracy column)...", file=sys.stderr)
        edgecnn("verify", bundle, check=False)  # a failed gate is the verify report's news, not the benchmark's
        done.append("ran `edgecnn verify` for the accuracy column")
    return done


def cold_start(bundle: Path, repeats: int) -> dict[str, Any]:
    """Wall time of whole `edgecnn predict one.png --model M` processes (median of ``repeats``, alternating),
    and of `edgecnn --version` (Python + edgecnn start, the floor of any command)."""
    from PIL import Image

    from edgecnn.bench.targets import bench_images
    from edgecnn.datasets import INPUT_SHAPE

    times: dict[str, list[float]] = {name: [] for name in ("--version", *COLD_MODELS)}
    with tempfile.TemporaryDirectory(prefix="edgecnn-cold-") as tmp:
        image = Path(tmp) / "one.png"
        Image.fromarray(bench_images(1, INPUT_SHAPE, bundle)[0][0].squeeze()).save(image)
        commands = {"--version": ("--version",), **{m: ("predict", image, "--model", bundle / m) for m in COLD_MODELS}}
        for _ in range(repeats):
            for name, args in commands.items():
                started = time.perf_counter()
                edgecnn(*args)
                times[name].append(time.perf_counter() - started)
    return {name: {"median_s": statistics.median(t), "runs_s": t} for name, t in times.items()}


def evaluate(report: lib.BenchReport, cold: dict[str, Any], blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target with its measured value, PASS/MISS and, for a miss, why (from the measurements)."""
    ratios = report.ratios
    rows = []

    def absent(label: str, goal: Target) -> None:
        rows.append({"target": label, "goal": goal.goal_text(), "measured": None, "passed": False, "detail": "-",
                     "why": "not measured in this run (see the notes)"})

    def add(target: Target, value: float | None, detail: str, why: Callable[[], str]) -> None:
        ok = target.passed(value)
        rows.append({"target": target.label, "goal": target.goal_text(), "measured": value, "passed": ok,
                     "detail": detail, "why": None if ok else why()})

    def operands(key: str) -> tuple[float, float, str]:
        r = ratios[key]
        a, b = r["a"]["p50_s"], r["b"]["p50_s"]
        return a, b, (f"{r['a']['name']} {r['a']['mode']} {seconds(a)} / {r['b']['name']} {r['b']['mode']} "
                      f"{seconds(b)} ({r['method']})")

    for key, label, goal in (("int8_vs_fp32:litert", "TFLite int8 p50 vs TFLite float32 (batch 1, 1 thread)", 0.45),
                             ("int8_vs_fp32:onnxruntime", "ONNX int8 p50 vs ONNX float32 (batch 1, 1 thread)", 0.7)):
        if key not in ratios:
            absent(label, Target(label, goal, True))
            continue
        a, b, detail = operands(key)
        add(Target(label, goal, True), ratios[key]["value"], detail,
            lambda a=a, b=b, key=key: (f"int8 saves only {seconds(b - a)} of {seconds(b)} per image; "
                                       + ("the per-node profile below shows which layers gain and which lose"
                                          if key.endswith("onnxruntime") else _slower_blocks(blocks))))
    for key in [k for k in ratios if k.startswith("predictor_overhead:")]:
        a, b, detail = operands(key)
        prepare = (ratios[key].get("paired_p50_s") or {}).get("prepare")
        add(Target(f"Predictor p50 vs raw runtime call: {key.split(':', 1)[1]} (batch 1, 1 thread)", 1.10, True),
            ratios[key]["value"], detail,
            lambda a=a, b=b, prepare=prepare: (
                f"the Predictor adds {seconds(a - b)} per call to a {seconds(b)} runtime call; converting the uint8 "
                f"image to the model's input (`Predictor.prepare`, timed alone in the same rounds) takes "
                f"{seconds(prepare)}, the rest is output conversion and Python calls"))
    speedup = Target("Fastest export vs Keras model.predict on one image (speed-up)", 500, False)
    if "keras_predict_vs_fastest" in ratios:
        a, b, detail = operands("keras_predict_vs_fastest")
        add(speedup, ratios["keras_predict_vs_fastest"]["value"], detail,
            lambda: "model.predict builds a data pipeline per call; its fixed cost bounds the speed-up")
    else:
        absent(speedup.label, speedup)
    ratio = cold[COLD_MODELS[0]]["median_s"] / cold[COLD_MODELS[1]]["median_s"]
    floor = cold["--version"]["median_s"]
    add(Target("Cold start of `edgecnn predict one.png`: int8 TFLite vs .keras", 0.3, True), ratio,
        f"{cold[COLD_MODELS[0]]['median_s']:.2f} s / {cold[COLD_MODELS[1]]['median_s']:.2f} s "
        f"(median of {len(cold['--version']['runs_s'])} processes each)",
        lambda: f"`edgecnn --version` alone takes {floor:.2f} s here (Python and edgecnn start), "
                "a floor both commands pay")
    return rows


def _slower_blocks(blocks: list[dict[str, Any]]) -> str:
    slower = [b for b in blocks if b["int8"] > b["float32"]]
    if not slower:
        return "see the per-layer table below"
    return "int8 is slower than float32 on " + "; ".join(
        f"{b['layers']} with input {tuple(b['input'])} ({seconds(b['float32'])} -> {seconds(b['int8'])})"
        for b in slower) + " (per-layer table below)"


def tflite_int8_blocks(model_path: Path) -> list[dict[str, Any]]:
    """Each weighted layer block timed alone in TFLite float32 and int8 (edgecnn.quantize.latency); empty
    when TensorFlow is missing or the model is not a plain stack of layers."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        return []
    from edgecnn.datasets import calibration_images, load_dataset
    from edgecnn.model import load_model
    from edgecnn.preprocess import to_model_input
    from edgecnn.quantize.latency import layer_latencies

    model = load_model(model_path)
    x = to_model_input(calibration_images(load_dataset(allow_download=False).x_train, 200), model.input_shape[1:])
    return [{"layers": b.layers, "input": b.input_shape, "float32": b.float32_s, "int8": b.int8_s}
            for b in layer_latencies(model, x) or []]


def onnx_node_profile(path: Path, runs: int = 2000) -> list[tuple[str, str, float]]:
    """(op type, node, median µs) per executed node, from ONNX Runtime's own profiler (batch 1, 1 thread)."""
    import json

    import numpy as np
    import onnxruntime as ort

    from edgecnn.runtime import Predictor
    from edgecnn.bench.targets import bench_images

    with tempfile.TemporaryDirectory(prefix="edgecnn-ortprof-") as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        x = Predictor.load(path).prepare(bench_images(1, tuple(session.get_inputs()[0].shape[1:]), path.parent)[0])
        feed = {session.get_inputs()[0].name: x}
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[tuple[str, str], list[float]] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node.setdefault((e["args"]["op_name"], e["name"][: -len("_kernel_time")]), []).append(e["dur"])
    return [(op, node, float(np.median(d))) for (op, node), d in per_node.items()]


def write_results(out: Path, report: lib.BenchReport, cold: dict[str, Any], targets: list[dict[str, Any]],
                  load: tuple[tuple[float, ...], tuple[float, ...]], command: str, prepared: list[str],
                  profiles: dict[str, list[tuple[str, str, float]]], blocks: list[dict[str, Any]],
                  mixed_entries: Sequence[dict[str, Any]] = ()) -> Path:
    m = report.machine
    packages = ", ".join(f"{k} {v}" for k, v in (m.get("packages") or {}).items() if v)
    lines = [
        "# edgecnn benchmark results", "",
        f"Written by `{command}` on {report.created}. Every figure below comes from that one run; "
        "rerun the command to reproduce it.", "",
        "## Machine", "",
        f"- CPU: {m['cpu']} ({m['cores']} logical cores, {m['arch']}), {m['system']}, Python {m['python']}",
        f"- Packages: {packages}",
        f"- Load average (1, 5, 15 min) at start {_load(load[0])}, at end {_load(load[1])}: "
        "other work on the machine shows up as noise in p90/p99.", "",
        "## Targets", "",
        "| target | goal | measured | result | operands |", "|---|---|---|---|---|",
    ]
    for t in targets:
        lines.append(f"| {t['target']} | {t['goal']} | {_x(t['measured'])} | {'PASS' if t['passed'] else 'MISS'} "
                     f"| {t['detail']} |")
    missed = [t for t in targets if not t["passed"]]
    if missed:
        lines += ["", "Missed targets:", ""] + [f"- **{t['target']}**: measured {_x(t['measured'])} "
                                               f"(goal {t['goal']}); {t['why']}." for t in missed]
    cfg = report.config
    lines += [
        "", "## Chart", "", "![p50 latency at batch 1 and throughput at the largest batch](latency.png)", "",
        "## All measurements", "",
        f"Batch sizes {cfg['batch_sizes']}, threads {cfg['threads']}, {cfg['runs']} timed runs after {cfg['warmup']} "
        f"warm-up runs per case, or fewer (the `runs` column) where {cfg['max_seconds']} s of timed runs ran out; "
        f"{cfg['isolation']}; input: {cfg['input']}. Latency is per batch; "
        "`load` is cold (a fresh process, importing the runtime included), one per model; RSS is the peak of that "
        "process after the row's case; "
        "`images/s` is batch size / mean latency, so stalls count; "
        "`arena` is the TFLite activation-arena estimate (liveness peak, see edgecnn/bench/facts.py).", "",
        format_markdown(report.results), "",
        *_browser_section(report),
        "## Cold start", "",
        "| command | median | runs |", "|---|---|---|",
    ]
    for name, c in cold.items():
        what = "edgecnn --version" if name == "--version" else f"edgecnn predict one.png --model {name}"
        lines.append(f"| `{what}` | {c['median_s']:.2f} s | {', '.join(f'{t:.2f}' for t in c['runs_s'])} |")
    if blocks:
        lines += ["", "## Where TFLite int8 gains and loses", "",
                  "Each weighted layer of the Keras model (with the pooling/flatten/dropout after it) converted alone "
                  "to TFLite float32 and int8 (calibrated on 200 training images) and timed: p50 at batch 1, 1 thread.",
                  "", "| layers | input | float32 | int8 | int8 / float32 |", "|---|---|---|---|---|"]
        lines += [f"| {b['layers']} | {tuple(b['input'])} | {seconds(b['float32'])} | {seconds(b['int8'])} | "
                  f"{b['int8'] / b['float32']:.2f}x |" for b in blocks]
    for entry in mixed_entries:
        mixed = entry["mixed_precision"]
        lines += ["", f"## Precision per layer of {entry['file']}", "",
                  f"Chosen at export (`edgecnn export`, budget {mixed['max_accuracy_drop_points']:g} points) on "
                  f"{mixed['validation_source']}: {mixed_scores(mixed)}. Latency: each layer alone at "
                  "batch 1, 1 thread, p50, timed by the export on the machine that exported. `edgecnn explain` gives "
                  "the whole table.", "",
                  "| layer | op | precision | reason | SQNR (dB) | accuracy recovered in float | float32 | int8 | "
                  "int8 / float32 |", "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['op']} | {r['precision']} | {r['reason']} | "
                  f"{'-' if r['sqnr_db'] is None else format(r['sqnr_db'], '.1f')} | {r['harm_points']:+.2f} pt | "
                  f"{seconds(r.get('float32_s'))} | {seconds(r.get('int8_s'))} | "
                  f"{'-' if r.get('float32_s') is None else format(r['int8_s'] / r['float32_s'], '.2f') + 'x'} |"
                  for r in entry["layers"]]
    if profiles:
        lines += ["", "## Where ONNX Runtime spends its time", "",
                  "Per-node medians from ONNX Runtime's profiler (batch 1, 1 thread, after its graph optimizations; "
                  "the profiler's resolution is 1 µs and it adds its own overhead, so totals exceed the p50 above)."]
        for name, nodes in profiles.items():
            lines += ["", f"`{name}`: {sum(t for _, _, t in nodes):.0f} µs in {len(nodes)} nodes", "",
                      "| op | node | µs |", "|---|---|---|"]
            lines += [f"| {op} | {node} | {t:.0f} |" for op, node, t in nodes]
    notes = report.notes + prepared
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    for title, start, end, script in (("Latency on real sizes", REAL_SIZES_START, REAL_SIZES_END, "real_sizes.py"),
                                      ("Where ARM and x86 disagree", ARM64_START, ARM64_END, "arm64.py")):
        lines += ["", f"## {title}", "", start, _kept(out / "RESULTS.md", start, end, script), end]
    return write_text(out / "RESULTS.md", "\n".join(lines) + "\n")


def _kept(results: Path, start: str, end: str, script: str) -> str:
    """The block another bench script wrote (another run, its own machine line), kept across this script's runs."""
    text = results.read_text(encoding="utf-8") if results.is_file() else ""
    return block_text(text, start, end) or f"Not measured yet: run `python bench/{script}`."


def _browser_section(report: lib.BenchReport) -> list[str]:
    """The browser rows on their own: p50 per ONNX export next to its native raw call, and the web app's size."""
    browser = [r for r in report.results if r["mode"] == BROWSER_MODE]
    if not browser:
        return []
    native = {r["name"]: r for r in report.results if r["mode"] == "raw" and r["batch_size"] == 1 and r["threads"] == 1}
    lines = ["## In the browser", "",
             "The page `edgecnn web` writes, served on 127.0.0.1 and driven by headless Chromium: onnxruntime-web "
             "(wasm backend, 1 thread), batch 1, `session.run` alone, timed in blocks of 10 calls (the browser clock "
             "ticks in 0.1 ms).", "",
             "| export | browser p50 | browser p99 | native raw p50 (1 thread) | browser / native | web app folder |",
             "|---|---|---|---|---|---|"]
    for r in browser:
        raw = native.get(r["name"])
        ratio = f"{r['latency_s']['p50'] / raw['latency_s']['p50']:.1f}x" if raw else "-"
        lines.append(f"| {r['name']} | {seconds(r['latency_s']['p50'])} | {seconds(r['latency_s']['p99'])} | "
                     f"{seconds(raw['latency_s']['p50']) if raw else '-'} | {ratio} | "
                     f"{r['web_app_bytes'] / 1e6:.2f} MB |")
    return lines + [""]


def _x(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}x" if value >= 100 else f"{value:.3f}x"


def _load(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) if values else "unknown"


def _loadavg() -> tuple[float, ...]:
    try:
        return tuple(os.getloadavg())
    except OSError:
        return ()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "models" / "fashion-cnn")
    parser.add_argument("--out", type=Path, default=HERE, help="Folder for RESULTS.md, results.json, latency.png.")
    parser.add_argument("--runs", default="1000")
    parser.add_argument("--warmup", default="100")
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--threads", default="1,N")
    parser.add_argument("--max-seconds", default="30", help="Time budget of one case's timed runs (Keras "
                                                           "model.predict needs ~1 minute for 1000 runs).")
    parser.add_argument("--cold-repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="200 runs, 20 warm-up, 1 thread, 3 cold starts.")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warmup, args.threads, args.cold_repeats = "200", "20", "1", 3

    prepared = prepare_bundle(args.bundle)
    load_start = _loadavg()
    options = lib.parse_options(batch_sizes=args.batch_sizes, threads=args.threads, runs=args.runs,
                                warmup=args.warmup, max_seconds=args.max_seconds)
    report = lib.bench([args.bundle], **options, plot_path=args.out / "latency.png", browser=True)
    print("cold starts...", file=sys.stderr)
    cold = cold_start(args.bundle, args.cold_repeats)
    load_end = _loadavg()
    listed = read_manifest(args.bundle)["exports"]
    print("per-layer and per-node profiles...", file=sys.stderr)
    profiles = {listed[k]["file"]: onnx_node_profile(args.bundle / listed[k]["file"]) for k in ("onnx", "onnx-int8")
                if k in listed}
    blocks = tflite_int8_blocks(args.bundle / MODEL_FILE)
    targets = evaluate(report, cold, blocks)
    command = "python bench/run_benchmarks.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    write_json(args.out / "results.json", {**report.to_dict(), "cold_start": cold, "targets": targets,
                                           "onnx_node_profile_us": profiles, "tflite_int8_blocks_s": blocks,
                                           "load_average": {"start": load_start, "end": load_end}})
    path = write_results(args.out, report, cold, targets, (load_start, load_end), command, prepared, profiles, blocks,
                         [e for e in listed.values() if e.get("layers") and e.get("mixed_precision")])
    print(report.table())
    for t in targets:
        print(f"{'PASS' if t['passed'] else 'MISS'}  {t['target']}: {_x(t['measured'])} (goal {t['goal']})")
    print(f"-> {path}, {args.out / 'results.json'}, {args.out / 'latency.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
