"""Benchmark exports side by side with Keras and the bare runtimes: latency, throughput, memory, size.

Every model x mode x batch size x thread count is one *case*, run in a fresh
process (:mod:`edgecnn.benchmark.worker`) on the same input images, with the
same warm-up and run count. The modes are the :class:`~edgecnn.runtime.Predictor`
and its backend's bare ``run_native`` for each export (so the predictor's
overhead is a measured ratio), and for the Keras model the reference's
``model.predict(x)`` and a direct ``model(x, training=False)``. Results carry the
machine they were measured on; :func:`compare` merges files from several machines.
"""
from __future__ import annotations

import importlib.util
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

from .benchmark.compare import COMPARE_PLOT, Comparison, compare
from .benchmark.facts import ModelFacts, file_facts
from .benchmark.output import check_outputs, format_table, write_csv, write_plot
from .benchmark.ratios import compute_ratios, format_ratios
from .benchmark.worker import EXPORT_MODES, KERAS_MODES, PAIR_MODE
from .bundle import MANIFEST_FILE, METRICS_FILE, MODEL_FILE, VERIFY_FILE, default_bundle, read_manifest
from .data import INPUT_SHAPE, load_dataset
from .errors import DataError, EdgecnnError
from .fileio import ensure_writable_dir, read_json, write_json
from .runtime import backend_class
from .versions import machine, utc_now

__all__ = ["BENCH_FILE", "COMPARE_PLOT", "FULL", "QUICK", "BenchReport", "Comparison", "bench", "compare",
           "compute_ratios", "find_targets", "format_ratios", "parse_options"]

BENCH_FILE = "bench.json"
#: The command's defaults, and the pipeline's preset (short, one thread, the two batch sizes users ask about).
FULL: dict[str, Any] = {"batch_sizes": (1, 32), "threads": (1, None), "runs": 1000, "warmup": 100}
QUICK: dict[str, Any] = {"batch_sizes": (1, 32), "threads": (1,), "runs": 200, "warmup": 20}
MAX_BATCH = 4096
MAX_THREADS = 256
MAX_RUNS = 1_000_000
MAX_SECONDS = 86_400
INPUT_SEED = 0


# --------------------------------------------------------------------------- options


def parse_counts(text: str, option: str, *, high: int, allow_n: bool = False) -> tuple[int | None, ...]:
    """"1,32" -> (1, 32); "N" -> None (all cores) where allowed. One-line error for anything else."""
    values: list[int | None] = []
    for part in str(text).split(","):
        part = part.strip()
        if allow_n and part.upper() == "N":
            values.append(None)
            continue
        try:
            values.append(int(part))
        except ValueError:
            hint = "whole numbers or N, e.g. 1,N" if allow_n else "whole numbers, e.g. 1,32"
            raise EdgecnnError(f"{option}: {part!r} is not a whole number (expected {hint})") from None
    return tuple(dict.fromkeys(_in_range(v, option, 1, high) if v is not None else None for v in values))


def parse_count(text: str | int, option: str, *, low: int, high: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise EdgecnnError(f"{option}: {text!r} is not a whole number") from None
    return _in_range(value, option, low, high)


def parse_options(*, batch_sizes: str | None = None, threads: str | None = None, runs: str | None = None,
                  warmup: str | None = None, max_seconds: str | None = None, quick: bool = False) -> dict[str, Any]:
    """Command-line text -> :func:`bench` keyword arguments; what is not given comes from QUICK or FULL."""
    preset = QUICK if quick else FULL
    return {
        "batch_sizes": parse_counts(batch_sizes, "--batch-sizes", high=MAX_BATCH) if batch_sizes else preset["batch_sizes"],
        "threads": parse_counts(threads, "--threads", high=MAX_THREADS, allow_n=True) if threads else preset["threads"],
        "runs": parse_count(runs, "--runs", low=1, high=MAX_RUNS) if runs else preset["runs"],
        "warmup": parse_count(warmup, "--warmup", low=0, high=MAX_RUNS) if warmup else preset["warmup"],
        "max_seconds": parse_count(max_seconds, "--max-seconds", low=1, high=MAX_SECONDS) if max_seconds else None,
    }


def _in_range(value: Any, option: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise EdgecnnError(f"{option} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise EdgecnnError(f"{option} must be between {low} and {high:,}, got {value}")
    return int(value)


@dataclass(frozen=True)
class BenchConfig:
    batch_sizes: tuple[int, ...]
    threads: tuple[int, ...]  # None ("N") resolved to os.cpu_count()
    runs: int
    warmup: int
    max_seconds: int | None = None  # time budget of one case's timed runs

    @classmethod
    def checked(cls, batch_sizes: Sequence[int], threads: Sequence[int | None], runs: int, warmup: int,
                max_seconds: int | None = None) -> "BenchConfig":
        """Validate the options (one-line errors) and resolve "N" threads to this machine's cores."""
        if not batch_sizes or not threads:
            raise EdgecnnError("--batch-sizes and --threads need at least one value each")
        cores = os.cpu_count() or 1
        return cls(
            tuple(dict.fromkeys(_in_range(b, "--batch-sizes", 1, MAX_BATCH) for b in batch_sizes)),
            tuple(dict.fromkeys(cores if t is None else _in_range(t, "--threads", 1, MAX_THREADS) for t in threads)),
            _in_range(runs, "--runs", 1, MAX_RUNS),
            _in_range(warmup, "--warmup", 0, MAX_RUNS),
            None if max_seconds is None else _in_range(max_seconds, "--max-seconds", 1, MAX_SECONDS),
        )


# --------------------------------------------------------------------------- targets


@dataclass
class BenchTarget:
    """One model file to benchmark, with what is known of it before it runs."""

    name: str  # the manifest's format key, "keras" for the Keras model, else the file name
    path: Path
    modes: tuple[str, ...]
    precision: str | None = None
    accuracy: float | None = None
    facts: ModelFacts | None = None
    input_shape: tuple[int, ...] = INPUT_SHAPE


def tensorflow_installed() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def find_targets(targets: Iterable[str | os.PathLike] | None, *, include_keras: bool = True) -> tuple[list[BenchTarget], list[str]]:
    """Bundle folders (every export, plus the Keras model) and model files -> targets, and notes."""
    notes: list[str] = []
    found: list[BenchTarget] = []
    for raw in list(targets or []) or [default_bundle()]:
        path = Path(raw)
        folder = path if path.is_dir() else path.parent
        if path.is_dir() and not (path / MANIFEST_FILE).is_file():
            raise EdgecnnError(f"{path} has no {MANIFEST_FILE}: nothing to benchmark (run `edgecnn export` first, "
                               "or name model files)")
        manifest = read_manifest(folder) if (folder / MANIFEST_FILE).is_file() else {}
        shape = tuple((manifest.get("model") or {}).get("input_shape") or INPUT_SHAPE)
        if path.suffix == ".keras":
            keras_file = path
            if not keras_file.is_file():
                raise EdgecnnError(f"model file {keras_file} not found")
        else:
            found += _export_targets(path, shape, known={t.path.resolve() for t in found})
            keras_file = folder / ((manifest.get("model") or {}).get("file") or MODEL_FILE)
            if not (path.is_dir() and include_keras and keras_file.is_file()):
                continue
        if any(t.path.resolve() == keras_file.resolve() for t in found):
            continue
        if not tensorflow_installed():
            notes.append(f"TensorFlow is not installed: no Keras rows for {keras_file} "
                         "(install edgecnn[train] to compare with Keras)")
            continue
        found.append(BenchTarget("keras", keras_file, KERAS_MODES, "float32", _keras_accuracy(keras_file.parent),
                                 input_shape=shape))
    if not found:
        raise EdgecnnError("nothing to benchmark" + (f": {notes[0]}" if notes else ""))
    _unique_names(found)
    if any(t.path.suffix == ".onnx" for t in found) and importlib.util.find_spec("onnx") is None:
        notes.append("the onnx package is not installed: no parameter and MAC counts for ONNX files")
    return found, notes


def _export_targets(path: Path, shape: tuple[int, ...], known: set[Path]) -> list[BenchTarget]:
    """The exports of a bundle folder (or one export file), named by the manifest, with their facts."""
    from .verify import resolve_targets

    found = []
    for t in (t for group in resolve_targets([path]).values() for t in group):
        if t.path.resolve() in known:
            continue
        backend_class(t.path)  # an unknown extension is a one-line error now, not in a worker
        entry = t.entry or {}
        found.append(BenchTarget(t.key, t.path, EXPORT_MODES, entry.get("precision"),
                                 (entry.get("verify") or {}).get("accuracy"), file_facts(t.path), shape))
        known.add(t.path.resolve())
    return found


def _keras_accuracy(folder: Path) -> float | None:
    """The Keras model's test accuracy: from verify.json, else from training's metrics.json."""
    for name, keys in ((VERIFY_FILE, ("reference", "accuracy")), (METRICS_FILE, ("test_accuracy",))):
        try:
            value: Any = read_json(folder / name) if (folder / name).is_file() else None
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
        except EdgecnnError:
            value = None
        if isinstance(value, (int, float)):
            return float(value)
    return None


def _unique_names(found: list[BenchTarget]) -> None:
    """Same key in two bundles (two "tflite" files): prefix the folder name."""
    counts: dict[str, int] = {}
    for t in found:
        counts[t.name] = counts.get(t.name, 0) + 1
    seen: set[str] = set()
    for t in found:
        if counts[t.name] > 1:
            t.name = f"{t.path.parent.name}/{t.name}"
        if t.name in seen:
            t.name = str(t.path)
        seen.add(t.name)


def bench_images(n: int, shape: tuple[int, ...], data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, str]:
    """``n`` uint8 images for every runtime: Fashion-MNIST test images when found, else seeded random."""
    if tuple(shape) == INPUT_SHAPE:
        try:
            x_test = load_dataset(data_dir, allow_download=False).x_test
        except DataError:
            x_test = None
        if x_test is not None and len(x_test):
            images = x_test[np.arange(n) % len(x_test)]
            return images, f"Fashion-MNIST test images (first {min(n, len(x_test))})"
    images = np.random.default_rng(INPUT_SEED).integers(0, 256, (n, *shape), dtype=np.uint8)
    return images, f"random uint8 images {tuple(shape)} (seed {INPUT_SEED}; Fashion-MNIST not found)"


# --------------------------------------------------------------------------- running


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
        return {"machine": self.machine, "created": self.created, "config": self.config, "results": self.results,
                "ratios": self.ratios, "notes": self.notes}

    def table(self) -> str:
        return format_table(self.results)


def bench(targets: Iterable[str | os.PathLike] | None = None, *, batch_sizes: Sequence[int] = (1, 32),
          threads: Sequence[int | None] = (1, None), runs: int = 1000, warmup: int = 100,
          json_path: str | os.PathLike | None = None, csv_path: str | os.PathLike | None = None,
          plot_path: str | os.PathLike | None = None, progress: bool = True, include_keras: bool = True,
          data_dir: str | os.PathLike | None = None, max_seconds: int | None = None) -> BenchReport:
    """Benchmark bundle folders or model files (default: every export of the default bundle and its Keras model).

    ``threads`` may hold ``None`` for all cores. ``max_seconds`` caps the timed runs
    of each case (slow Keras ``model.predict``): each row records the runs it made.
    Results go to DIR/bench.json (DIR: the first target's folder) and to
    ``json_path``/``csv_path``/``plot_path`` when given.
    """
    cfg = BenchConfig.checked(batch_sizes, threads, runs, warmup, max_seconds)
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
        inputs = _save_inputs(found, max(cfg.batch_sizes), Path(tmp), data_dir)
        common = {"runs": cfg.runs, "warmup": cfg.warmup, "max_seconds": cfg.max_seconds}
        jobs: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], None]]] = []
        for t in found:
            for n, b, mode in ((n, b, mode) for n in cfg.threads for b in cfg.batch_sizes for mode in t.modes):
                case = {"path": str(t.path.resolve()), "mode": mode, "batch_size": b, "threads": n, **common,
                        "images": str(inputs[t.input_shape][0])}
                jobs.append((f"{t.name} {mode} batch {b} x{n} threads", case,
                             lambda result, t=t, case=case: rows.append(_row(t, case, result))))
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
    config = {"batch_sizes": list(cfg.batch_sizes), "threads": list(cfg.threads), "runs": cfg.runs,
              "warmup": cfg.warmup, "max_seconds": cfg.max_seconds,
              "input": "; ".join(described for _, described in inputs.values()), "isolation": "one process per case"}
    report = BenchReport(machine(), utc_now(), config, rows, compute_ratios(rows, pairs), notes)
    for path in dict.fromkeys(Path(p).resolve() for p in (default_json, json_path) if p is not None):
        report.written.append(write_json(path, report.to_dict()))
    if csv_path is not None:
        report.written.append(write_csv(csv_path, rows, lambda row: report.machine))
    if plot_path is not None:
        report.written.append(write_plot(plot_path, rows, title=f"edgecnn bench on {report.machine['cpu']}"))
    return report


def quantization_pairs(found: list[BenchTarget]) -> list[tuple[str, BenchTarget, BenchTarget]]:
    """Per runtime, its int8 and float32 exports (exactly one of each), to be timed side by side."""
    by: dict[str, dict[str, list[BenchTarget]]] = {}
    for t in found:
        if t.modes == EXPORT_MODES and t.precision in ("int8", "float32"):
            by.setdefault(backend_class(t.path).name, {}).setdefault(t.precision, []).append(t)
    return [(backend, of["int8"][0], of["float32"][0]) for backend, of in by.items()
            if len(of.get("int8", [])) == 1 and len(of.get("float32", [])) == 1]


def _save_inputs(found: list[BenchTarget], count: int, folder: Path,
                 data_dir: str | os.PathLike | None) -> dict[tuple[int, ...], tuple[Path, str]]:
    """One .npy of input images per input shape, shared by every case of that shape."""
    inputs = {}
    for shape in dict.fromkeys(t.input_shape for t in found):
        images, described = bench_images(count, shape, data_dir)
        path = folder / f"images-{len(inputs)}.npy"
        np.save(path, images)
        inputs[shape] = (path, described)
    return inputs


def run_worker(case: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Run one case in a fresh Python process and return its measurements."""
    index = len(list(tmp.glob("case-*.json")))
    case_file, out_file = tmp / f"case-{index}.json", tmp / f"result-{index}.json"
    case_file.write_text(json.dumps({**case, "out": str(out_file)}), encoding="utf-8")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    proc = subprocess.run([sys.executable, "-m", "edgecnn.benchmark.worker", str(case_file)],
                          capture_output=True, text=True, env=env)
    if not out_file.is_file():
        tail = [line for line in proc.stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
        raise EdgecnnError(f"benchmark of {case['path']} ({case['mode']}) crashed with exit code "
                           f"{proc.returncode}: {tail[0][:300]}")
    result = json.loads(out_file.read_text(encoding="utf-8"))
    if "error" in result:
        raise EdgecnnError(result["error"])
    return result


def _row(target: BenchTarget, case: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    facts = target.facts or ModelFacts(target.path.stat().st_size, measured.get("params"), measured.get("macs"), None)
    return {
        "name": target.name, "file": str(target.path), "backend": measured.get("backend"),
        "precision": target.precision or measured.get("precision"), "mode": case["mode"],
        "batch_size": case["batch_size"], "threads": case["threads"],
        "load_s": measured["load_s"], "first_inference_s": measured["first_inference_s"],
        "latency_s": measured["latency_s"], "images_per_s": measured["images_per_s"],
        "peak_rss_mb": measured["peak_rss_mb"], **facts.to_dict(), "accuracy": target.accuracy,
        "runs": measured["runs"], "warmup": case["warmup"],
        **({"paired_p50_s": measured["paired_p50_s"]} if "paired_p50_s" in measured else {}),
    }
