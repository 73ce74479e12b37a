"""``edgecnn pipeline``: train -> export -> verify -> bench -> report, redoing only what is out of date.

A step is skipped when its outputs are complete and newer than its inputs. The
checks look at what a finished step leaves behind, not at whether its files
exist: training's last files must be newer than the model it checkpoints while
it runs, every export must match its manifest sha256 and come from the current
model.keras, verify's results must be stored in both verify.json and the
manifest with the same timestamp. A step killed halfway therefore always
reruns, and since every file is written atomically, nothing half-written is
ever read. One pipeline runs per folder at a time (a lock file).
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from .bench import BENCH_FILE, QUICK
from .bundle import (HISTORY_FILE, MANIFEST_FILE, METRICS_FILE, MODEL_FILE, REFERENCE_PROBS_FILE, REPORT_FILE,
                     default_bundle, read_manifest)
from .data import FILES, candidate_dirs
from .errors import EdgecnnError
from .fileio import ensure_writable_dir, read_json, remove_stale_temp_files, sha256_file
from .results import SUMMARY_FILE, TRAINING_FILE, ExportRow, all_passed, export_rows, format_text_table, load_bundle
from .train import TrainConfig
from .verify import VERIFY_FILE

STEPS = ("train", "export", "verify", "bench", "report")
#: Options recorded in metrics.json that decide whether the trained model is the one asked for.
TRAIN_OPTIONS = ("epochs", "batch_size", "patience", "seed", "limit")
LOCK_FILE = ".pipeline.lock"


@dataclass
class StepOutcome:
    name: str
    ran: bool
    seconds: float
    reason: str  # why it ran, or why it was skipped

    def line(self) -> str:
        state = "ran" if self.ran else "skipped"
        return f"{self.name:<7} {state:<8} {self.seconds:7.1f} s  ({self.reason})"


@dataclass
class PipelineResult:
    out: Path
    steps: list[StepOutcome]
    rows: list[ExportRow]
    passed: bool
    seconds: float
    report: Path
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        return format_text_table(self.rows)


# ----------------------------------------------------------------------------- staleness

def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


def outdated(outputs: list[Path], inputs: list[Path]) -> str | None:
    """Why ``outputs`` must be remade: one is missing or older than an input; None when up to date."""
    for path in outputs:
        if not path.is_file():
            return f"no {path.name}"
    present = [p for p in inputs if p.is_file()]
    if not present:
        return None
    newest = max(present, key=_mtime)
    oldest = min(outputs, key=_mtime)
    if _mtime(oldest) < _mtime(newest):
        return f"{newest.name} is newer than {oldest.name}"
    return None


def _expected_data_source(data_dir: str | os.PathLike | None) -> Path | None:
    """The folder training would read (explicit, environment or system), without loading it."""
    if data_dir is not None:
        return Path(data_dir).resolve()
    found = next((d for d in candidate_dirs(None) if all((d / f).is_file() for f in FILES.values())), None)
    return found.resolve() if found else None


def train_reason(out: Path, cfg: TrainConfig) -> str | None:
    """Why training must run: no finished run, or one made with other options or data."""
    try:
        metrics = read_json(out / METRICS_FILE, what="metrics") if (out / METRICS_FILE).is_file() else None
    except EdgecnnError as exc:
        return str(exc)
    if not isinstance(metrics, dict):
        return f"no {METRICS_FILE}"
    for option in TRAIN_OPTIONS:
        if metrics.get(option) != getattr(cfg, option):
            return f"--{option.replace('_', '-')} changed: {metrics.get(option)} -> {getattr(cfg, option)}"
    source, expected = metrics.get("data_source"), _expected_data_source(cfg.data_dir)
    if expected is not None and (not source or Path(source).resolve() != expected):
        return f"data changed: {source} -> {expected}"
    if not (out / MODEL_FILE).is_file():
        return f"no {MODEL_FILE}"
    # Training checkpoints model.keras while it runs and writes these after the final save: an interrupted
    # run leaves model.keras newer than them.
    finished = [out / HISTORY_FILE, out / METRICS_FILE, out / SUMMARY_FILE]
    if importlib.util.find_spec("matplotlib") is not None:
        finished.append(out / TRAINING_FILE)
    return outdated(finished, [out / MODEL_FILE])


def _manifest(out: Path) -> dict | None:
    try:
        return read_manifest(out) if (out / MANIFEST_FILE).is_file() else None
    except EdgecnnError:
        return None


def export_reason(out: Path) -> str | None:
    """Why exporting must run: an export missing, or not matching its manifest entry or the current model."""
    from .export import FORMATS

    manifest = _manifest(out)
    if manifest is None:
        return f"no readable {MANIFEST_FILE}"
    model_sha = sha256_file(out / MODEL_FILE)
    if (manifest.get("model") or {}).get("sha256") != model_sha:
        return f"{MODEL_FILE} changed since the last export"
    reference = manifest.get("reference") or {}
    probs = out / REFERENCE_PROBS_FILE
    if reference.get("model_sha256") != model_sha or not probs.is_file() or sha256_file(probs) != reference.get("probs_sha256"):
        return f"{REFERENCE_PROBS_FILE} missing or not from the current model"
    for name, fmt in FORMATS.items():
        entry = manifest["exports"].get(name)
        if entry is None or not (out / entry["file"]).is_file():
            return f"{name} not exported"
        if entry.get("source_sha256") != model_sha or sha256_file(out / entry["file"]) != entry["sha256"]:
            return f"{entry['file']} does not match its manifest entry"
    return None


def _export_files(out: Path, manifest: dict) -> list[Path]:
    return [out / entry["file"] for entry in manifest["exports"].values()]


def _results_after_exports(out: Path, name: str, inputs: tuple[str, ...]) -> tuple[dict, dict] | str:
    """The manifest and the results file ``name``, or why the step making it must run (missing, older than a
    model file or ``inputs``, unreadable)."""
    manifest = _manifest(out)
    if manifest is None:
        return f"no readable {MANIFEST_FILE}"
    stale = outdated([out / name], _export_files(out, manifest) + [out / f for f in inputs])
    if stale:
        return stale
    try:
        results = read_json(out / name)
    except EdgecnnError as exc:
        return str(exc)
    return (manifest, results) if isinstance(results, dict) else f"{name} is not a JSON object"


def verify_reason(out: Path) -> str | None:
    """Why verifying must run: results missing, older than an export, or not stored completely."""
    found = _results_after_exports(out, VERIFY_FILE, (REFERENCE_PROBS_FILE, MODEL_FILE))
    if isinstance(found, str):
        return found
    manifest, results = found
    for name, entry in manifest["exports"].items():
        if name not in (results.get("exports") or {}):
            return f"{name} not verified"
        if (entry.get("verify") or {}).get("verified_at") != results.get("created"):
            return f"the verify results of {name} were not stored in {MANIFEST_FILE}"
    return None


def bench_reason(out: Path) -> str | None:
    """Why benchmarking must run: results missing, older than a model file, or lacking a model."""
    found = _results_after_exports(out, BENCH_FILE, (MODEL_FILE,))
    if isinstance(found, str):
        return found
    manifest, results = found
    measured = {r.get("name") for r in results.get("results") or [] if isinstance(r, dict)}
    missing = [name for name in manifest["exports"] if name not in measured]
    return f"{missing[0]} not benchmarked" if missing else None


def report_reason(out: Path) -> str | None:
    from .report import REPORT_INPUTS

    return outdated([out / REPORT_FILE], [out / name for name in REPORT_INPUTS])


# ----------------------------------------------------------------------------- steps

@contextlib.contextmanager
def _folder_lock(out: Path) -> Iterator[None]:
    """One pipeline per folder: a second one would rewrite the files the first is reading."""
    with open(out / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EdgecnnError(f"another edgecnn pipeline is running in {out}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _steps(out: Path, cfg: TrainConfig, log: Callable[[str], None]) -> dict[str, tuple[Callable[[], str | None],
                                                                                       Callable[[], None]]]:
    """Each step: (why it must run or None, run it)."""
    from . import export, report, train, verify
    from .bench import bench

    def run_export() -> None:
        def progress(name: str, stage: str) -> None:
            if stage == "start":
                log(f"  export: {name} ...")

        export.export_model(out / MODEL_FILE, (export.ALL,), out, data_dir=cfg.data_dir, on_progress=progress)

    def run_verify() -> None:
        verify.verify([out], data_dir=cfg.data_dir)

    return {
        "train": (lambda: train_reason(out, cfg), lambda: train.train(cfg)),
        "export": (lambda: export_reason(out), run_export),
        "verify": (lambda: verify_reason(out), run_verify),
        "bench": (lambda: bench_reason(out), lambda: bench([out], **QUICK, data_dir=cfg.data_dir)),
        "report": (lambda: report_reason(out), lambda: report.write_report(out, data_dir=cfg.data_dir)),
    }


def run_pipeline(out: str | os.PathLike | None = None, train_cfg: TrainConfig | None = None, force: bool = False,
                 *, log: Callable[[str], None] | None = None) -> PipelineResult:
    """Bring ``out`` (default: models/fashion-cnn) up to date; ``force`` redoes every step.

    ``log`` receives one line per step (and export progress). A failed verification
    does not stop the pipeline (bench and report still run): see ``result.passed``.
    """
    from .train import validate_config

    started = time.perf_counter()
    log = log or (lambda line: None)
    out = Path(out) if out is not None else default_bundle()
    cfg = replace(train_cfg or TrainConfig(), out=out)
    validate_config(cfg)
    ensure_writable_dir(out)
    outcomes = []
    with _folder_lock(out):
        remove_stale_temp_files(out)  # left by a run that was killed mid-write
        for name, (reason_of, run) in _steps(out, cfg, log).items():
            step_started = time.perf_counter()
            reason = "--force" if force else reason_of()
            if reason is not None:
                try:
                    run()
                except BaseException:
                    log(f"{name:<7} {'failed':<8} {time.perf_counter() - step_started:7.1f} s")
                    raise
            outcomes.append(StepOutcome(name, reason is not None, time.perf_counter() - step_started,
                                        reason or "up to date"))
            log(outcomes[-1].line())
    rows = export_rows(load_bundle(out))
    return PipelineResult(out, outcomes, rows, bool(all_passed(rows)), time.perf_counter() - started,
                          out / REPORT_FILE)
