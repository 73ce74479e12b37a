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
from edgecnn.pipeline import STEPS, run_pipeline
from edgecnn.train import TrainConfig

from .conftest import needs_real_data, require_real_data
from .helpers import ENV_AT_START, REPO, assert_one_line_error, invoke

TINY = ("--limit", "600", "--epochs", "1")
# The benchmark's own preset times 28 cases for a minute and more; these tests are about the pipeline's
# bookkeeping, so its bench step times the exports only, at one batch size with few runs.
FAST_BENCH = {"batch_sizes": (1,), "threads": (1,), "runs": 20, "warmup": 2, "include_keras": False}
LAUNCH = ("import sys, edgecnn.pipeline as p; p.QUICK = " + repr(FAST_BENCH) +
          "; from edgecnn.cli import main; main()")
ARTIFACTS = ("model.keras", "metrics.json", "history.json", "summary.txt", "training.png", MANIFEST_FILE,
             "reference_probs.npy", "reference_labels.npy", "verify.json", "bench.json", REPORT_FILE, "pipeline.json")


def _command(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", LAUNCH, "pipeline", "--out", str(out), *args]


def run_pipeline_cli(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(out, *args), cwd=REPO, env=ENV_AT_START, capture_output=True, text=True,
                          timeout=600)


def _step_lines(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines() if line.split()[:1] and line.split()[0] in STEPS
            and len(line.split()) > 1 and line.split()[1] in ("ran", "skipped", "failed")}


def start_and_kill(out: Path, *args: str, when: str, settle_on_temp: bool = False) -> tuple[list[str], list[str]]:
    """Start the pipeline, SIGKILL it once a stdout line starts with ``when`` (and, with ``settle_on_temp``, once
    a temp file is being written); return its stdout lines and the temp files present when it was killed."""
    env = {**ENV_AT_START, "PYTHONUNBUFFERED": "1"}
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
    require_real_data()
    out = tmp_path_factory.mktemp("pipeline") / "bundle"
    killed_lines, temps = start_and_kill(out, *TINY, when="  export: tflite-int8", settle_on_temp=True)
    incomplete = pipeline.exports_match_manifest(out), set(pipeline.read_records(out))
    rerun = run_pipeline_cli(out, *TINY)
    return out, killed_lines, temps, incomplete, rerun


@needs_real_data
def test_kill_during_export_then_rerun_finishes_with_no_half_written_file(finished):
    out, killed_lines, temps, incomplete, rerun = finished
    assert "train" in _step_lines("\n".join(killed_lines))
    assert temps, "the kill should land while an export is being written"
    inconsistent, recorded = incomplete
    assert inconsistent is not None and recorded == {"train"}  # the killed export is not taken for a finished one
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


def _reasons(out: Path, cfg: TrainConfig) -> dict[str, str | None]:
    records = pipeline.read_records(out)
    return {step.name: pipeline.step_reason(out, step, records.get(step.name))
            for step in pipeline._steps(out, cfg, lambda line: None)}


@needs_real_data
def test_a_checkout_with_scrambled_times_is_up_to_date(finished, tmp_path):
    copy = tmp_path / "bundle"
    copy.mkdir()
    for age, path in enumerate(sorted(finished[0].iterdir())):  # what git does: fresh times, in its own order
        if path.is_file():
            shutil.copy(path, copy / path.name)
            os.utime(copy / path.name, (1e9 + age, 1e9 + age))
    assert _reasons(copy, TrainConfig(out=copy, limit=600, epochs=1)) == dict.fromkeys(STEPS)


@needs_real_data
def test_staleness_follows_the_contents(finished, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(finished[0], copy)
    cfg = TrainConfig(out=copy, limit=600, epochs=1)
    for option, value in (("epochs", 2), ("batch_size", 16), ("patience", 3), ("seed", 7), ("limit", None)):
        changed = TrainConfig(**{**vars(cfg), option: value})
        assert f"--{option.replace('_', '-')} changed" in _reasons(copy, changed)["train"]
    with open(copy / "verify.json", "a") as handle:
        handle.write("\n")
    reasons = _reasons(copy, cfg)
    assert reasons["verify"] == "verify.json changed since the verify step" and reasons["report"] == "verify.json changed"
    assert reasons["train"] is reasons["export"] is reasons["bench"] is None
    (copy / "model_int8.tflite").write_bytes(b"not the exported model")
    reasons = _reasons(copy, cfg)
    assert reasons["export"] == "model_int8.tflite changed since the export step"
    assert reasons["verify"] == reasons["bench"] == "model_int8.tflite changed"
    (copy / "model.keras").write_bytes(b"a checkpoint of an interrupted run")
    assert _reasons(copy, cfg)["train"] == "model.keras changed since the train step"
    (copy / "pipeline.json").unlink()
    assert all("no finished" in reason for reason in _reasons(copy, cfg).values())


@needs_real_data
def test_a_failed_verification_exits_1_even_when_every_step_is_up_to_date(finished, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(finished[0], copy)
    results = json.loads((copy / "verify.json").read_text())  # as if verify had found onnx broken
    results["exports"]["onnx"].update(passed=False, failures=["agreement 12.00% < 99.9%"])
    (copy / "verify.json").write_text(json.dumps(results))
    records = json.loads((copy / "pipeline.json").read_text())
    records["steps"]["verify"]["outputs"]["verify.json"] = sha256_file(copy / "verify.json")
    (copy / "pipeline.json").write_text(json.dumps(records))
    proc = run_pipeline_cli(copy, *TINY)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    steps = _step_lines(proc.stdout)
    assert all("skipped" in steps[s] for s in ("train", "export", "verify", "bench")) and " ran " in steps["report"]
    assert "FAIL" in proc.stdout.strip().splitlines()[-1]


def _fake_steps(calls: list[str], checks: dict[str, str | None], failing: str | None = None):
    """Steps that record their runs; ``checks`` says which are inconsistent (must run even when recorded)."""
    def run(name):
        calls.append(name)
        if name == failing:
            raise EdgecnnError(f"{name} broke")

    return lambda out, cfg, log, on_layer_progress=None: [pipeline.Step(name, dict, list, (), lambda n=name: checks.get(n), lambda n=name: run(n))
                                  for name in STEPS]


def test_force_runs_every_step_and_recorded_steps_are_skipped(tmp_path, monkeypatch):
    calls, lines = [], []
    monkeypatch.setattr(pipeline, "_steps", _fake_steps(calls, {}))
    result = run_pipeline(tmp_path / "b", TrainConfig(), log=lines.append)
    assert calls == list(STEPS) and all("no finished" in s.reason for s in result.steps)
    calls.clear()
    result = run_pipeline(tmp_path / "b", TrainConfig(), log=lines.append)
    assert calls == [] and not any(s.ran for s in result.steps)
    assert not result.passed  # nothing verified is not a pass
    result = run_pipeline(tmp_path / "b", TrainConfig(), force=True, log=lines.append)
    assert calls == list(STEPS) and all(s.ran and s.reason == "--force" for s in result.steps)
    calls.clear()
    monkeypatch.setattr(pipeline, "_steps", _fake_steps(calls, {"verify": "no verify.json"}))
    result = run_pipeline(tmp_path / "b", TrainConfig(), log=lines.append)
    assert calls == ["verify"] and [s.name for s in result.steps if s.ran] == ["verify"]
    assert any(line.startswith("verify  ran") and "no verify.json" in line for line in lines)


def test_a_failing_step_stops_the_pipeline_and_is_not_recorded(tmp_path, monkeypatch):
    calls, lines = [], []
    monkeypatch.setattr(pipeline, "_steps", _fake_steps(calls, {}, failing="export"))
    with pytest.raises(EdgecnnError, match="export broke"):
        run_pipeline(tmp_path / "b", TrainConfig(), log=lines.append)
    assert calls == ["train", "export"] and lines[-1].startswith("export  failed")
    assert set(pipeline.read_records(tmp_path / "b")) == {"train"}


def test_one_pipeline_per_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "_steps", _fake_steps([], {}))
    with pipeline._folder_lock(tmp_path):
        with pytest.raises(EdgecnnError, match="another edgecnn pipeline is running"):
            run_pipeline(tmp_path, TrainConfig())


def test_pipeline_rejects_bad_options(tmp_path):
    assert_one_line_error(invoke("pipeline", "--out", tmp_path / "b", "--epochs", "0"), "--epochs", code=2)
    (tmp_path / "file").write_text("x")
    assert_one_line_error(invoke("pipeline", "--out", tmp_path / "file"), "is a file", code=2)
