"""Benchmark exports side by side with Keras and the bare runtimes: latency, throughput, memory, size.

Every model x mode x batch size x thread count is one *case*, on the same input
images, with the same warm-up and run count; each model and thread count runs
its cases in a fresh process (:mod:`edgecnn.bench.worker`), on one load. The
modes are the :class:`~edgecnn.runtime.Predictor` and its backend's bare
``run_native`` for each export (so the predictor's overhead is a measured
ratio), and for the Keras model the reference's ``model.predict(x)`` and a
direct ``model(x, training=False)``. Results carry the machine they were
measured on; :func:`~.compare.compare` merges files from several machines.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import click
import numpy as np

from ..bundle.files import BENCH_FILE
from ..bundle.schema import BENCH_WHAT, SCHEMA_VERSIONS
from ..errors import EdgecnnError
from ..fileio import ensure_writable_dir, write_json
from ..runtime import BACKENDS, backend_class
from ..versions import machine, utc_now
from .browser import browser_rows
from .facts import ModelFacts
from .options import BenchConfig
from .output import check_outputs, format_table, write_csv, write_plot
from .ratios import compute_ratios
from .targets import BenchTarget, bench_images, find_targets
from .timing import MIN_BUDGET_RUNS
from .worker import EXPORT_MODES, PAIR_MODE


@dataclass
class BenchReport:
    machine: dict[str, Any]
    created: str
    config: dict[str, Any]
    results: list[dict[str, Any]]
    ratios: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSIONS[BENCH_WHAT], "machine": self.machine, "created": self.created,
                "config": self.config, "results": self.results, "ratios": self.ratios, "notes": self.notes}

    def table(self) -> str:
        return format_table(self.results)


def bench(targets: Iterable[str | os.PathLike] | None = None, *, batch_sizes: Sequence[int] = (1, 32),
          threads: Sequence[int | None] = (1, None), runs: int = 1000, warmup: int = 100,
          json_path: str | os.PathLike | None = None, csv_path: str | os.PathLike | None = None,
          plot_path: str | os.PathLike | None = None, progress: bool = True, include_keras: bool = True,
          data: str | os.PathLike | None = None, max_seconds: int | None = None, min_runs: int = MIN_BUDGET_RUNS,
          browser: bool = False, raw_cases: bool = True) -> BenchReport:
    """Benchmark bundle folders or model files (default: every export of the default bundle and its Keras model).

    ``threads`` may hold ``None`` for all cores. The inputs are each bundle's test images (``data`` overrides
    where they come from; see :func:`edgecnn.datasets.bundled.bundle_test_set`). ``max_seconds`` caps the warm-up and
    timed runs of each case together (slow Keras calls), keeping at least ``min_runs`` timed: each row records the
    runs it made.
    Results go to DIR/bench.json (DIR: the first target's folder) and to
    ``json_path``/``csv_path``/``plot_path`` when given. ``browser`` adds a batch-1 row per ONNX
    export run by the `edgecnn web` page in headless Chromium (mode ``browser/wasm``). ``raw_cases=False`` leaves
    out the rows of the bare runtime calls: each Predictor row still times them in alternation, for its overhead.
    """
    cfg = BenchConfig.checked(batch_sizes, threads, runs, warmup, max_seconds, min_runs, raw_cases)
    found, notes = find_targets(targets, include_keras=include_keras)
    default_json: Path | None = found[0].path.parent / BENCH_FILE
    try:
        ensure_writable_dir(default_json.parent)
    except EdgecnnError as exc:
        if json_path is None:
            raise EdgecnnError(f"{exc}; give --json FILE to write the results elsewhere") from None
        notes.append(f"{default_json} not written ({exc})")
        default_json = None
    check_outputs([Path(p) for p in (default_json, json_path, csv_path, plot_path) if p is not None],
                   plot=plot_path is not None)

    rows: list[dict[str, Any]] = []
    pairs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgecnn-bench-") as tmp:
        inputs = _save_inputs(found, max(cfg.batch_sizes), Path(tmp), data)
        common = {"runs": cfg.runs, "warmup": cfg.warmup, "max_seconds": cfg.max_seconds, "min_runs": cfg.min_runs}
        jobs: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], None]]] = []
        for t in found:
            modes = t.modes if cfg.raw_cases else tuple(m for m in t.modes if m != "raw")
            for n in cfg.threads:
                cases = [{"mode": mode, "batch_size": b} for b in cfg.batch_sizes for mode in modes]
                group = {"path": str(t.path.resolve()), "threads": n, "cases": cases, **common,
                         "images": str(inputs[t.input_shape][0]), "input_range": t.input_range}
                jobs.append((f"{t.name} x{n} threads", group, lambda result, t=t, group=group: rows.extend(
                    _row(t, group, case, measured) for case, measured in zip(group["cases"], result["results"]))))
        batch, n = min(cfg.batch_sizes), min(cfg.threads)
        for backend, int8, base in quantization_pairs(found):
            case = {"paths": [str(int8.path.resolve()), str(base.path.resolve())], "mode": PAIR_MODE,
                    "batch_size": batch, "threads": n, **common, "images": str(inputs[int8.input_shape][0])}
            jobs.append((f"{int8.name} vs {base.name} side by side", case,
                         lambda result, names=(int8.name, base.name), backend=backend: pairs.append(
                             {"backend": backend, "names": names, "batch_size": batch, "threads": n, **result})))
        with click.progressbar(jobs, label="benchmarking", file=sys.stderr, hidden=not progress,
                               item_show_func=lambda job: job and job[0]) as bar:
            for _, case, store in bar:
                store(run_worker(case, Path(tmp)))
    if browser:
        rows += browser_rows(found, runs=cfg.runs, warmup=cfg.warmup, notes=notes)
    config = {"batch_sizes": list(cfg.batch_sizes), "threads": list(cfg.threads), "runs": cfg.runs,
              "warmup": cfg.warmup, "max_seconds": cfg.max_seconds, "min_runs": cfg.min_runs,
              "input": "; ".join(described for _, described in inputs.values()), "raw_cases": cfg.raw_cases,
              "isolation": "one process per model and thread count, loaded once for its cases"}
    report = BenchReport(machine(), utc_now(), config, rows, compute_ratios(rows, pairs), notes)
    for path in dict.fromkeys(Path(p).resolve() for p in (default_json, json_path) if p is not None):
        report.written.append(write_json(path, report.to_dict()))
    if csv_path is not None:
        report.written.append(write_csv(csv_path, rows, lambda row: report.machine))
    if plot_path is not None:
        report.written.append(write_plot(plot_path, rows, title=f"edgecnn bench on {report.machine['cpu']}"))
    return report


def quantization_pairs(found: list[BenchTarget]) -> list[tuple[str, BenchTarget, BenchTarget]]:
    """Per runtime, its int8 and float32 exports of one file type (exactly one of each), to be timed side by side.

    A runtime that reads several types (onnxruntime: .onnx and .ort) is paired on the first type in
    :data:`edgecnn.runtime.BACKENDS` order that has such a pair, so the .ort copies do not hide the .onnx pair.
    """
    by: dict[str, dict[str, dict[str, list[BenchTarget]]]] = {}
    for t in found:
        if t.modes == EXPORT_MODES and t.precision in ("int8", "float32"):
            by.setdefault(backend_class(t.path).name, {}).setdefault(t.path.suffix.lower(), {}) \
                .setdefault(t.precision, []).append(t)
    pairs = []
    for backend, types in by.items():
        for of in (types[suffix] for suffix in BACKENDS if suffix in types):
            if len(of.get("int8", [])) == 1 and len(of.get("float32", [])) == 1:
                pairs.append((backend, of["int8"][0], of["float32"][0]))
                break
    return pairs


def _save_inputs(found: list[BenchTarget], count: int, folder: Path,
                 data: str | os.PathLike | None) -> dict[tuple[int, ...], tuple[Path, str]]:
    """One .npy of input images per input shape (from the first bundle of that shape), shared by its cases."""
    inputs = {}
    first = {t.input_shape: t.path.parent for t in reversed(found)}
    for shape in dict.fromkeys(t.input_shape for t in found):
        images, described = bench_images(count, shape, first[shape], data)
        path = folder / f"images-{len(inputs)}.npy"
        np.save(path, images)
        inputs[shape] = (path, described)
    return inputs


def run_worker(case: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Run one model's cases (or a pair) in a fresh Python process and return its measurements."""
    index = len(list(tmp.glob("case-*.json")))
    case_file, out_file = tmp / f"case-{index}.json", tmp / f"result-{index}.json"
    case_file.write_text(json.dumps({**case, "out": str(out_file)}), encoding="utf-8")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    proc = subprocess.run([sys.executable, "-m", "edgecnn.bench.worker", str(case_file)],
                          capture_output=True, text=True, env=env)
    if not out_file.is_file():  # the worker reports every expected error in its result: this is a bug
        tail = [line for line in proc.stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
        pair = case.get("mode") == PAIR_MODE
        models = ", ".join(case["paths"]) if pair else case["path"]
        modes = PAIR_MODE if pair else ", ".join(dict.fromkeys(c["mode"] for c in case["cases"]))
        raise RuntimeError(f"benchmark worker for {models} ({modes}) crashed with exit code "
                           f"{proc.returncode}: {tail[0][:300]}\n{proc.stderr[-4000:]}")
    result = json.loads(out_file.read_text(encoding="utf-8"))
    if "error" in result:
        raise EdgecnnError(result["error"])
    return result


def _row(target: BenchTarget, group: dict[str, Any], case: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    facts = target.facts or ModelFacts(target.path.stat().st_size, measured.get("params"), measured.get("macs"), None)
    return {
        "name": target.name, "file": str(target.path), "backend": measured.get("backend"),
        "precision": target.precision or measured.get("precision"), "mode": case["mode"],
        "batch_size": case["batch_size"], "threads": group["threads"],
        "load_s": measured["load_s"], "first_inference_s": measured["first_inference_s"],
        "latency_s": measured["latency_s"], "images_per_s": measured["images_per_s"],
        "peak_rss_mb": measured["peak_rss_mb"], **facts.to_dict(), "accuracy": target.accuracy,
        "runs": measured["runs"], "warmup": group["warmup"],
        **({"paired_p50_s": measured["paired_p50_s"]} if "paired_p50_s" in measured else {}),
    }
