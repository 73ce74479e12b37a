"""``edgecnn pipeline``: train -> export -> verify -> bench -> report, redoing only what is out of date.

After each step the pipeline records in DIR/pipeline.json the sha256 of what the
step read (model, exports, results; training's options) and of what it wrote. A
step is skipped when that record matches the files as they are now: its outputs
were made from the current inputs and have not changed since. Contents, not
modification times, decide, so a bundle checked out by git (which scrambles
mtimes) is up to date, and a step killed halfway, which records nothing, always
reruns. Content checks back the record up (every export matches its manifest
sha256; verify's results are in both verify.json and the manifest). All files
are written atomically; one pipeline runs per folder at a time (a lock file).
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout

from .bench.options import QUICK
from .bundle.files import (ARCHITECTURE_FILE, BENCH_FILE, HISTORY_FILE, MANIFEST_FILE, METRICS_FILE, MODEL_FILE,
                           PIPELINE_FILE, PIPELINE_LOCK_FILE, REFERENCE_LABELS_FILE, REFERENCE_PROBS_FILE, REPORT_FILE,
                           SUMMARY_FILE, TRAINING_FILE, VERIFY_FILE, default_bundle)
from .bundle.manifest import load_manifest
from .bundle.schema import BENCH_WHAT, VERIFY_WHAT, BenchFile, Manifest, VerifyFile, read_checked
from .bundle.results import load_bundle
from .datasets.fashion_mnist import FILES, candidate_dirs
from .errors import EdgecnnError
from .fileio import ensure_writable_dir, read_json, remove_stale_temp_files, sha256_file, write_json
from .progress import Progress
from .render.rows import ExportRow, all_passed, export_rows, format_text_table
from .train import TrainConfig
from .versions import utc_now

STEPS = ("train", "export", "verify", "bench", "report")
#: Training options whose change means another model (recorded with the data folder).
TRAIN_OPTIONS = ("epochs", "batch_size", "patience", "seed", "limit", "image_size", "channels")


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

    def table(self) -> str:
        return format_text_table(self.rows)


# ----------------------------------------------------------------------------- what each step reads and writes

def file_hashes(out: Path, names: list[str]) -> dict[str, str | None]:
    """sha256 of each named file in ``out`` (None when it is missing)."""
    return {name: sha256_file(out / name) if (out / name).is_file() else None for name in names}


def _expected_data_source(data: str | os.PathLike | None) -> str | None:
    """The data training reads (explicit, environment or system), found without loading it."""
    if data is not None:
        return str(Path(data).resolve())
    found = next((d for d in candidate_dirs(None) if all((d / f).is_file() for f in FILES.values())), None)
    return str(found.resolve()) if found else None


def _as_json(value: Any) -> Any:
    """An option as pipeline.json reads it back (tuples are lists), so an unchanged option compares equal."""
    return list(value) if isinstance(value, tuple) else value


def _manifest(out: Path) -> Manifest | None:
    try:
        return load_manifest(out) if (out / MANIFEST_FILE).is_file() else None
    except EdgecnnError:
        return None


def _export_files(out: Path) -> list[str]:
    manifest = _manifest(out)
    return [entry.file for entry in manifest.exports.values()] if manifest else []


def exports_match_manifest(out: Path) -> str | None:
    """Every format exported from the current model.keras, each file matching its manifest sha256."""
    from .export import FORMATS

    manifest = _manifest(out)
    if manifest is None:
        return f"no readable {MANIFEST_FILE}"
    model_sha = sha256_file(out / MODEL_FILE)
    if manifest.model is None or manifest.model.sha256 != model_sha:
        return f"{MODEL_FILE} changed since the last export"
    reference, probs = manifest.reference, out / REFERENCE_PROBS_FILE
    if (reference is None or reference.model_sha256 != model_sha or not probs.is_file()
            or sha256_file(probs) != reference.probs_sha256):
        return f"{REFERENCE_PROBS_FILE} missing or not from the current model"
    for name in FORMATS:
        entry = manifest.exports.get(name)
        if entry is None or not (out / entry.file).is_file():
            return f"{name} not exported"
        if entry.source_sha256 != model_sha or sha256_file(out / entry.file) != entry.sha256:
            return f"{entry.file} does not match its manifest entry"
    return None


def verify_stored(out: Path) -> str | None:
    """Every export verified, and the results stored in both verify.json and the manifest (same timestamp)."""
    manifest = _manifest(out)
    if manifest is None:
        return f"no readable {MANIFEST_FILE}"
    results = read_checked(VerifyFile, out / VERIFY_FILE, VERIFY_WHAT)
    for name, entry in manifest.exports.items():
        if name not in results.exports:
            return f"{name} not verified"
        if entry.verify is None or entry.verify.verified_at != results.created:
            return f"the verify results of {name} were not stored in {MANIFEST_FILE}"
    return None


def bench_complete(out: Path) -> str | None:
    """Every export benchmarked."""
    measured = {row.name for row in read_checked(BenchFile, out / BENCH_FILE, BENCH_WHAT).results}
    manifest = _manifest(out)
    missing = [name for name in (manifest.exports if manifest else {}) if name not in measured]
    return f"{missing[0]} not benchmarked" if missing else None


@dataclass
class Step:
    """One step: what its outputs are made from, what it writes, extra content checks, and how to run it."""

    name: str
    inputs: Callable[[], dict[str, Any]]  # option values and sha256 of the files it reads
    outputs: Callable[[], list[str]]  # the files it wrote (those present)
    required: tuple[str, ...]  # files a finished step always leaves
    check: Callable[[], str | None]  # why the files are inconsistent, or None
    run: Callable[[], Any]
    #: What its last run could not do (a format export could not write), one line each, filled by ``run``: a step
    #: with any is not recorded as done, so the next run tries it again.
    missed: list[str] = field(default_factory=list)


def _changed(key: str, old: Any, new: Any) -> str:
    if key in TRAIN_OPTIONS:
        return f"--{key.replace('_', '-')} changed: {old} -> {new}"
    return f"data changed: {old} -> {new}" if key == "data" else f"{key} changed"


def step_reason(out: Path, step: Step, record: dict | None) -> str | None:
    """Why ``step`` must run, or None when its recorded inputs and outputs match the files now."""
    for name in step.required:
        if not (out / name).is_file():
            return f"no {name}"
    if not isinstance(record, dict):
        return f"no finished {step.name} step recorded in {PIPELINE_FILE}"
    recorded, now = record.get("inputs") or {}, step.inputs()
    for key in dict.fromkeys([*now, *recorded]):
        if recorded.get(key) != now.get(key):
            return _changed(key, recorded.get(key), now.get(key))
    for name, digest in (record.get("outputs") or {}).items():
        if not (out / name).is_file():
            return f"no {name}"
        if sha256_file(out / name) != digest:
            return f"{name} changed since the {step.name} step"
    try:
        return step.check()
    except EdgecnnError as exc:
        return str(exc)


# ----------------------------------------------------------------------------- steps

@contextlib.contextmanager
def _folder_lock(out: Path) -> Iterator[None]:
    """One pipeline per folder: a second one would rewrite the files the first is reading."""
    lock = FileLock(out / PIPELINE_LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise EdgecnnError(f"another edgecnn pipeline is running in {out}; wait for it to finish") from None
    try:
        yield
    finally:
        lock.release()


def _steps(out: Path, cfg: TrainConfig, log: Callable[[str], None],
           on_layer_progress: Progress | None = None) -> list[Step]:
    """The five steps, in order."""
    from . import export, train, verify
    from .bench import bench
    from .render import report

    def existing(names: list[str]) -> Callable[[], list[str]]:
        return lambda: [name for name in names if (out / name).is_file()]

    export_missed: list[str] = []

    def run_export() -> None:
        def progress(name: str, stage: str) -> None:
            if stage == "start":
                log(f"  export: {name} ...")

        result = export.export_model(out / MODEL_FILE, (export.ALL,), out, data=cfg.data, on_progress=progress,
                                     on_layer_progress=on_layer_progress)
        export_missed[:] = [f"{name} not written: {why}" for name, why in result.failed.items()] + result.missed_budgets

    export_outputs = [fmt.file for fmt in export.FORMATS.values()] + [REFERENCE_PROBS_FILE, REFERENCE_LABELS_FILE]
    return [
        Step("train", lambda: {**{o: _as_json(getattr(cfg, o)) for o in TRAIN_OPTIONS},
                               "data": _expected_data_source(cfg.data)},
             existing([MODEL_FILE, METRICS_FILE, HISTORY_FILE, SUMMARY_FILE, TRAINING_FILE, ARCHITECTURE_FILE]),
             (MODEL_FILE, METRICS_FILE), lambda: None, lambda: train.train(cfg)),
        Step("export", lambda: file_hashes(out, [MODEL_FILE]), existing(export_outputs), (MANIFEST_FILE,),
             lambda: exports_match_manifest(out), run_export, export_missed),
        Step("verify", lambda: file_hashes(out, _export_files(out) + [REFERENCE_PROBS_FILE, MODEL_FILE]),
             existing([VERIFY_FILE]), (VERIFY_FILE,), lambda: verify_stored(out),
             lambda: verify.verify([out], data=cfg.data)),
        Step("bench", lambda: file_hashes(out, _export_files(out) + [MODEL_FILE]), existing([BENCH_FILE]),
             (BENCH_FILE,), lambda: bench_complete(out), lambda: bench([out], **QUICK, data=cfg.data, browser=True)),
        Step("report", lambda: file_hashes(out, list(report.REPORT_INPUTS)), existing([REPORT_FILE]), (REPORT_FILE,),
             lambda: None, lambda: report.write_report(out, data=cfg.data)),
    ]


def read_records(out: Path) -> dict[str, Any]:
    """The finished steps recorded in pipeline.json ({} when there is none or it is unreadable: everything reruns)."""
    try:
        records = read_json(out / PIPELINE_FILE, what="pipeline record") if (out / PIPELINE_FILE).is_file() else {}
    except EdgecnnError:
        return {}
    steps = records.get("steps") if isinstance(records, dict) else None
    return steps if isinstance(steps, dict) else {}


def run_pipeline(out: str | os.PathLike | None = None, train_cfg: TrainConfig | None = None, force: bool = False,
                 *, log: Callable[[str], None] | None = None,
                 on_layer_progress: Progress | None = None) -> PipelineResult:
    """Bring ``out`` (default: models/fashion-cnn) up to date; ``force`` redoes every step.

    ``log`` receives one line per step (and export progress); ``on_layer_progress`` the int8 formats'
    per-layer measurements (see :data:`edgecnn.progress.Progress`). A failed verification
    does not stop the pipeline (bench and report still run), nor does a format export cannot write: see
    ``result.passed``.
    """
    from .train import validate_config

    started = time.perf_counter()
    log = log or (lambda line: None)
    out = Path(out) if out is not None else default_bundle()
    cfg = replace(train_cfg or TrainConfig(), out=out)
    validate_config(cfg)
    ensure_writable_dir(out)
    outcomes = []
    failures: list[str] = []
    with _folder_lock(out):
        remove_stale_temp_files(out)  # left by a run that was killed mid-write
        records = read_records(out)
        for step in _steps(out, cfg, log, on_layer_progress):
            step_started = time.perf_counter()
            reason = "--force" if force else step_reason(out, step, records.get(step.name))
            if reason is not None:
                inputs = step.inputs()  # before running: an input changed meanwhile makes the record stale
                try:
                    step.run()
                except BaseException:
                    log(f"{step.name:<7} {'failed':<8} {time.perf_counter() - step_started:7.1f} s")
                    raise
                for line in step.missed:
                    log(f"FAIL {step.name}: {line}")
                failures += step.missed
                if step.missed:
                    records.pop(step.name, None)  # not done: the next run tries it again
                else:
                    records[step.name] = {"inputs": inputs, "outputs": file_hashes(out, step.outputs()),
                                          "finished": utc_now(),
                                          "seconds": round(time.perf_counter() - step_started, 1)}
                write_json(out / PIPELINE_FILE, {"steps": records})
            outcomes.append(StepOutcome(step.name, reason is not None, time.perf_counter() - step_started,
                                        reason or "up to date"))
            log(outcomes[-1].line())
    rows = export_rows(load_bundle(out))
    return PipelineResult(out, outcomes, rows, bool(all_passed(rows)) and not failures,
                          time.perf_counter() - started, out / REPORT_FILE)
