"""The pipeline: every artifact, up-to-date steps skipped, --force, changed options, and a SIGKILL mid-export."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgecnn import pipeline
from edgecnn.bundle import MANIFEST_FILE, REPORT_FILE
from edgecnn.errors import EdgecnnError
from edgecnn.export import FORMATS
from edgecnn.fileio import TMP_PREFIX, sha256_file
from edgecnn.pipeline import STEPS, run_pipeline, train_reason
from edgecnn.train import TrainConfig

from .conftest import REPO, assert_one_line_error, needs_real_data, run_cli

TINY = ("--limit", "600", "--epochs", "1")
# The benchmark's own preset times 28 cases for a minute and more; these tests are about the pipeline's
# bookkeeping, so its bench step times the exports only, at one batch size with few runs.
FAST_BENCH = {"batch_sizes": (1,), "threads": (1,), "runs": 20, "warmup": 2, "include_keras": False}
LAUNCH = ("import sys, edgecnn.pipeline as p; p.QUICK = " + repr(FAST_BENCH) +
          "; from edgecnn.cli import main; main()")
ARTIFACTS = ("model.keras", "metrics.json", "history.json", "summary.txt", "training.png", MANIFEST_FILE,
             "reference_probs.npy", "reference_labels.npy", "verify.json", "bench.json", REPORT_FILE)


def _command(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", LAUNCH, "pipeline", "--out", str(out), *args]


def run_pipeline_cli(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(out, *args), cwd=REPO, capture_output=True, text=True, timeout=600)


def _step_lines(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines() if line.split()[:1] and line.split()[0] in STEPS
            and len(line.split()) > 1 and line.split()[1] in ("ran", "skipped", "failed")}


def start_and_kill(out: Path, *args: str, when: str, settle_on_temp: bool = False) -> tuple[list[str], list[str]]:
    """Start the pipeline, SIGKILL it once a stdout line starts with ``when`` (and, with ``settle_on_temp``, once
    a temp file is being written); return its stdout lines and the temp files present when it was killed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_command(out, *args), cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    lines, temps = [], []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith(when):
                break
        deadline = time.monotonic() + 20
        while settle_on_temp and not temps and time.monotonic() < deadline and proc.poll() is None:
            temps = [p.name for p in out.glob(TMP_PREFIX + "*")]
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert any(line.startswith(when) for line in lines), "\n".join(lines[-20:])
    return lines, temps


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny pipeline killed during export, then run again to the end."""
    out = tmp_path_factory.mktemp("pipeline") / "bundle"
    killed_lines, temps = start_and_kill(out, *TINY, when="  export: tflite-int8", settle_on_temp=True)
    incomplete = pipeline.export_reason(out)
    rerun = run_pipeline_cli(out, *TINY)
    return out, killed_lines, temps, incomplete, rerun


@needs_real_data
def test_kill_during_export_then_rerun_finishes_with_no_half_written_file(finished):
    out, killed_lines, temps, incomplete, rerun = finished
    assert "train" in _step_lines("\n".join(killed_lines))
    assert temps, "the kill should land while an export is being written"
    assert incomplete is not None  # the killed export is not mistaken for a finished one
    steps = _step_lines(rerun.stdout)
    assert "skipped" in steps["train"], rerun.stdout
    for step in ("export", "verify", "bench", "report"):
        assert " ran " in steps[step], rerun.stdout
    assert not list(out.glob(TMP_PREFIX + "*"))
    for name in ARTIFACTS:
        assert (out / name).stat().st_size > 0, name
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["model"]["sha256"] == sha256_file(out / "model.keras")
    assert set(manifest["exports"]) == set(FORMATS)
    for entry in manifest["exports"].values():
        assert sha256_file(out / entry["file"]) == entry["sha256"], entry["file"]
    passed = json.loads((out / "verify.json").read_text())["passed"]
    assert rerun.returncode == (0 if passed else 1), rerun.stderr
    table = rerun.stdout[rerun.stdout.index("model "):]
    for key in FORMATS:
        assert key in table
    assert ("PASS" if passed else "FAIL") in rerun.stdout.strip().splitlines()[-1]
    assert all(step in rerun.stdout for step in STEPS)


@needs_real_data
def test_second_run_skips_every_step(finished):
    out = finished[0]
    started = time.perf_counter()
    again = run_pipeline_cli(out, *TINY)
    seconds = time.perf_counter() - started
    steps = _step_lines(again.stdout)
    assert set(steps) == set(STEPS)
    assert all("skipped" in line and "up to date" in line for line in steps.values()), again.stdout
    assert seconds < 30  # no step ran: seconds, where training alone takes longer
    assert again.returncode == finished[4].returncode


@needs_real_data
def test_changed_option_reruns_training(finished, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(finished[0], copy)
    lines, _ = start_and_kill(copy, "--limit", "600", "--epochs", "1", "--seed", "7", when="train ")
    assert "--seed changed: 42 -> 7" in _step_lines("\n".join(lines))["train"]


@needs_real_data
def test_staleness_follows_the_files(finished, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(finished[0], copy)
    cfg = TrainConfig(out=copy, limit=600, epochs=1)
    assert train_reason(copy, cfg) is None
    for option, value in (("epochs", 2), ("batch_size", 16), ("patience", 3), ("limit", None)):
        changed = TrainConfig(**{**vars(cfg), option: value})
        assert f"--{option.replace('_', '-')} changed" in train_reason(copy, changed)
    assert pipeline.export_reason(copy) is None
    later = time.time() + 5
    os.utime(copy / "model_int8.tflite", (later, later))  # same bytes, newer file: downstream steps redo
    assert pipeline.export_reason(copy) is None
    for reason in (pipeline.verify_reason, pipeline.bench_reason):
        assert "model_int8.tflite is newer" in reason(copy)
    assert pipeline.report_reason(copy) is None  # the page reads results, not model files
    os.utime(copy / "verify.json", (later, later))
    assert "verify.json is newer than report.html" in pipeline.report_reason(copy)
    (copy / "model_int8.tflite").write_bytes(b"not the exported model")
    assert "does not match its manifest" in pipeline.export_reason(copy)
    os.utime(copy / "model.keras", (later + 5, later + 5))  # a checkpoint newer than metrics: unfinished training
    assert "newer than" in train_reason(copy, cfg)


@needs_real_data
def test_a_failed_verification_exits_1_even_when_every_step_is_up_to_date(finished, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(finished[0], copy)
    results = json.loads((copy / "verify.json").read_text())
    results["exports"]["onnx"].update(passed=False, failures=["agreement 12.00% < 99.9%"])
    (copy / "verify.json").write_text(json.dumps(results))
    proc = run_pipeline_cli(copy, *TINY)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    steps = _step_lines(proc.stdout)
    assert all("skipped" in steps[s] for s in ("train", "export", "verify", "bench")) and " ran " in steps["report"]
    assert "FAIL" in proc.stdout.strip().splitlines()[-1]


def _fake_steps(calls: list[str], reasons: dict[str, str | None], failing: str | None = None):
    def make(name):
        def run():
            calls.append(name)
            if name == failing:
                raise EdgecnnError(f"{name} broke")
        return (lambda: reasons.get(name)), run
    return lambda out, cfg, log: {name: make(name) for name in STEPS}


def test_force_runs_every_step_and_up_to_date_steps_are_skipped(tmp_path, monkeypatch):
    calls, lines = [], []
    monkeypatch.setattr(pipeline, "_steps", _fake_steps(calls, {}))
    result = run_pipeline(tmp_path / "b", TrainConfig(), force=True, log=lines.append)
    assert calls == list(STEPS) and all(s.ran and s.reason == "--force" for s in result.steps)
    calls.clear()
    result = run_pipeline(tmp_path / "b", TrainConfig(), log=lines.append)
    assert calls == [] and not any(s.ran for s in result.steps)
    assert not result.passed  # nothing verified is not a pass
    monkeypatch.setattr(pipeline, "_steps", _fake_steps(calls, {"verify": "no verify.json"}))
    result = run_pipeline(tmp_path / "b", TrainConfig(), log=lines.append)
    assert calls == ["verify"] and [s.name for s in result.steps if s.ran] == ["verify"]
    assert any(line.startswith("verify  ran") and "no verify.json" in line for line in lines)


def test_a_failing_step_stops_the_pipeline_with_its_line(tmp_path, monkeypatch):
    calls, lines = [], []
    monkeypatch.setattr(pipeline, "_steps", _fake_steps(calls, {s: "x" for s in STEPS}, failing="export"))
    with pytest.raises(EdgecnnError, match="export broke"):
        run_pipeline(tmp_path / "b", TrainConfig(), log=lines.append)
    assert calls == ["train", "export"] and lines[-1].startswith("export  failed")


def test_one_pipeline_per_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "_steps", _fake_steps([], {}))
    with pipeline._folder_lock(tmp_path):
        with pytest.raises(EdgecnnError, match="another edgecnn pipeline is running"):
            run_pipeline(tmp_path, TrainConfig())


def test_pipeline_rejects_bad_options(tmp_path):
    assert_one_line_error(run_cli("pipeline", "--out", tmp_path / "b", "--epochs", "0"), "--epochs", code=2)
    (tmp_path / "file").write_text("x")
    assert_one_line_error(run_cli("pipeline", "--out", tmp_path / "file"), "is a file", code=2)
