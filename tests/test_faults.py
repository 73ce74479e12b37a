"""Faults: SIGKILL in the middle of a write, and a full disk.

Every artifact is written through fileio.atomic_path (temp file + fsync +
rename), so whatever the moment of the failure, each file in a bundle is either
its previous complete version or its new complete version, the manifest's
sha256s still match, temp files of the killed run are swept by the next one,
and the next run completes.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgecnn import fileio
from edgecnn.errors import EdgecnnError
from edgecnn.export import FORMATS
from edgecnn.fileio import TMP_PREFIX, sha256_file

from .helpers import ENV_AT_START, REPO, assert_one_line_error, invoke

# ------------------------------------------------------------------ helpers


@pytest.fixture
def shared(tiny_bundle, tiny_data) -> tuple[Path, Path]:
    return tiny_bundle, tiny_data


def _files(folder: Path) -> dict[str, str]:
    """name -> sha256 of every regular file (temp files and the lock excluded)."""
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(TMP_PREFIX) and p.name != ".manifest.lock"}


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(TMP_PREFIX + "*"))


def _spawn(args: list, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "edgecnn", *map(str, args)], cwd=REPO, env=ENV_AT_START,
                                stdout=out, stderr=subprocess.STDOUT)


def _kill_when(proc: subprocess.Popen, ready, log: Path, timeout: float = 240) -> str:
    """SIGKILL ``proc`` as soon as ``ready()`` returns a reason; fail if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reason = ready()
        if reason:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            return reason
        if proc.poll() is not None:
            pytest.fail(f"the process ended (rc {proc.returncode}) before the kill point:\n{log.read_text()[-3000:]}")
        time.sleep(0.002)
    proc.kill()
    proc.wait(30)
    pytest.fail(f"no kill point within {timeout} s:\n{log.read_text()[-3000:]}")


def _assert_consistent(folder: Path, before: dict[str, str]) -> None:
    """Every earlier artifact is still there, complete; the manifest's sha256s match its files."""
    after = _files(folder)
    assert before.keys() <= after.keys(), f"lost: {sorted(before.keys() - after.keys())}"
    for name in after:
        path = folder / name
        if name.endswith(".json"):
            json.loads(path.read_text())  # complete JSON, old or new
        elif name.endswith(".npy"):
            np.load(path, allow_pickle=False)
        elif name.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None, name
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        for key, entry in manifest.get("exports", {}).items():
            assert sha256_file(folder / entry["file"]) == entry["sha256"], key


# ----------------------------------------------------------- SIGKILL: train


def test_sigkill_during_train_keeps_the_previous_artifacts(shared, tmp_path):
    from edgecnn.model import load_model
    from edgecnn.train import TrainConfig, train

    _, data = shared
    out = tmp_path / "bundle"
    train(TrainConfig(out=out, limit=300, epochs=1, seed=1, data=data))
    before = _files(out)

    log = tmp_path / "train.log"
    proc = _spawn(["train", "--out", out, "--epochs", "40", "--patience", "40", "--seed", "2", "--data-dir", data], log)

    def mid_checkpoint():  # the most dangerous moment: model.keras being replaced
        if any(p.name.startswith(f"{TMP_PREFIX}{proc.pid}-model") for p in _temps(out)):
            return "mid-write of the model checkpoint"
        return "after epoch 3" if "Epoch 4/" in log.read_text(errors="replace") else ""

    reason = _kill_when(proc, mid_checkpoint, log)
    _assert_consistent(out, before)
    load_model(out / "model.keras")  # the previous model or a complete checkpoint of the killed run

    train(TrainConfig(out=out, limit=300, epochs=1, seed=1, data=data))  # the next run completes
    assert _temps(out) == [], f"the killed run's temp files were not swept (killed {reason})"
    _assert_consistent(out, before)


# ---------------------------------------------------------- SIGKILL: export


def _temp_of(proc: subprocess.Popen, folder: Path, stem: str) -> bool:
    return any(p.name.startswith(f"{TMP_PREFIX}{proc.pid}-{stem}-") for p in _temps(folder))


def _assert_exports_load(folder: Path) -> None:
    from edgecnn.runtime import Predictor

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"]["sha256"] == sha256_file(folder / "model.keras")
    for key, entry in manifest["exports"].items():
        probs = Predictor.load(folder / entry["file"]).predict(np.zeros((2, 28, 28), np.uint8))
        assert probs.shape == (2, 10), key


def test_sigkill_during_export_keeps_the_bundle_consistent(shared, tmp_path):
    """Re-export a complete bundle and kill it while it writes the 4th file (tflite-int8)."""
    from edgecnn.export import FORMATS, export_model

    bundle, data = shared
    out = tmp_path / "bundle"
    shutil.copytree(bundle, out)
    before = _files(out)
    log = tmp_path / "export.log"
    proc = _spawn(["export", "--model", out / "model.keras", "--data-dir", data, "--calibration-samples", "100"], log)
    reason = _kill_when(proc, lambda: "mid-write of model_int8.tflite" if _temp_of(proc, out, "model_int8") else "",
                        log)
    _assert_consistent(out, before)
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["exports"]) == set(FORMATS), f"an entry was lost (killed {reason})"
    _assert_exports_load(out)

    export_model(out / "model.keras", ("all",), calibration_samples=100, data=data)  # the next run completes
    assert _temps(out) == []
    _assert_consistent(out, before)
    _assert_exports_load(out)


# -------------------------------------------------------- SIGKILL: pipeline


@pytest.mark.e2e  # the whole pipeline, killed and then run to the end (export, verify, bench workers, report)
def test_sigkill_during_pipeline_then_the_next_run_completes(shared, tmp_path, monkeypatch):
    """Kill `edgecnn pipeline` mid-export (training done and recorded); the rerun keeps the model and finishes."""
    import edgecnn.pipeline
    from edgecnn.train import TrainConfig

    _, data = shared
    out = tmp_path / "bundle"
    log = tmp_path / "pipeline.log"
    proc = _spawn(["pipeline", "--out", out, "--limit", "300", "--epochs", "1", "--data-dir", data], log)
    reason = _kill_when(proc, lambda: "mid-write of model_int8.onnx" if _temp_of(proc, out, "model_int8") and
                        "export: onnx-int8" in log.read_text(errors="replace") else "", log)
    trained = _files(out)
    assert {"model.keras", "metrics.json", "manifest.json", "pipeline.json"} <= trained.keys(), (reason, trained)
    _assert_consistent(out, {})
    _assert_exports_load(out)
    records = json.loads((out / "pipeline.json").read_text())["steps"]
    assert list(records) == ["train"], records  # export was killed: not recorded, so it reruns

    # The next run, in-process with a shorter benchmark (its worker processes dominate the time).
    monkeypatch.setattr(edgecnn.pipeline, "QUICK", {"batch_sizes": (1,), "threads": (1,), "runs": 5, "warmup": 1,
                                                    "include_keras": False})  # Keras workers: a TF start each
    lines: list[str] = []
    result = edgecnn.pipeline.run_pipeline(out, TrainConfig(out=out, limit=300, epochs=1, data=data),
                                           log=lines.append)
    ran = {step.name: step.ran for step in result.steps}
    assert ran == {"train": False, "export": True, "verify": True, "bench": True, "report": True}, lines
    assert sha256_file(out / "model.keras") == trained["model.keras"], "the trained model was redone or changed"
    assert _temps(out) == []
    _assert_consistent(out, trained)
    assert (out / "report.html").stat().st_size > 0


# -------------------------------------------------------------- full disk


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _half_then_enospc(path, data: bytes) -> None:
    """Write half of ``data`` to ``path``, then fail as a full disk does."""
    with open(path, "wb") as handle:
        handle.write(data[: max(1, len(data) // 2)])
    _enospc()


@pytest.mark.parametrize("writer", ["json", "npy", "bytes"])
def test_enospc_mid_write_keeps_the_previous_file(tmp_path, monkeypatch, writer):
    """The write fails half-way: old file intact, no temp file, a one-line error naming the file."""
    target = tmp_path / f"artifact.{writer}"
    fileio.write_bytes(target, b"previous complete version")
    before = target.read_bytes()
    big = np.arange(100_000, dtype=np.float32)
    monkeypatch.setattr(Path, "write_bytes", lambda self, data: _half_then_enospc(self, data))
    with pytest.raises(EdgecnnError) as info:
        {"json": lambda: fileio.write_json(target, {"x": big[:1000].tolist()}),
         "npy": lambda: fileio.write_npy(target, big),
         "bytes": lambda: fileio.write_bytes(target, big.tobytes())}[writer]()
    monkeypatch.undo()
    assert "No space left on device" in str(info.value) and str(target) in str(info.value)
    assert target.read_bytes() == before
    assert _temps(tmp_path) == []


def test_enospc_at_fsync_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "manifest.json"
    fileio.write_json(target, {"old": True})
    monkeypatch.setattr(fileio.os, "fsync", _enospc)
    with pytest.raises(EdgecnnError, match="No space left"):
        fileio.write_json(target, {"new": True})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": True}
    assert _temps(tmp_path) == []


def test_write_that_produces_nothing_is_refused(tmp_path):
    target = tmp_path / "model.onnx"
    fileio.write_bytes(target, b"old")
    with pytest.raises(EdgecnnError, match="produced no data"):
        with fileio.atomic_path(target):
            pass  # a writer that silently wrote nothing
    assert target.read_bytes() == b"old" and _temps(tmp_path) == []


def test_stale_temp_files_of_dead_writers_are_swept(tmp_path):
    """A temp file of a killed writer (its pid gone) is removed by the next write; a live writer's is kept."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{TMP_PREFIX}{int(dead.stdout)}-model-abc.keras"
    live = tmp_path / f"{TMP_PREFIX}{os.getppid()}-model-def.keras"
    stale.write_bytes(b"half")
    live.write_bytes(b"in progress")
    fileio.write_json(tmp_path / "manifest.json", {})
    assert not stale.exists() and live.exists()


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 2 MiB tmpfs (root and mount(2) needed: skipped where unavailable)."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_tmpfs_keeps_the_previous_npy(tiny_tmpfs):
    target = tiny_tmpfs / "reference_probs.npy"
    old = np.ones((1000, 10), np.float32)
    fileio.write_npy(target, old)  # 40 kB
    with pytest.raises(EdgecnnError, match="No space left") as info:
        fileio.write_npy(target, np.zeros((1000, 1000), np.float32))  # 4 MB > 2 MiB
    assert str(target) in str(info.value)
    np.testing.assert_array_equal(np.load(target, allow_pickle=False), old)
    assert _temps(tiny_tmpfs) == []


def test_full_disk_during_train_keeps_the_previous_model(shared, tiny_tmpfs):
    """A real full disk under `edgecnn train`: exit 2, one line, previous model.keras untouched."""
    from edgecnn.model import build_model, save_model

    save_model(build_model(), tiny_tmpfs / "model.keras")  # 1.3 MB of the 2 MiB: no room for a second copy
    before = sha256_file(tiny_tmpfs / "model.keras")
    proc = invoke("train", "--out", tiny_tmpfs, "--limit", "300", "--epochs", "1", "--data-dir", shared[1])
    assert_one_line_error(proc, "No space left on device", str(tiny_tmpfs / "model.keras"), code=2)
    assert sha256_file(tiny_tmpfs / "model.keras") == before
    assert _temps(tiny_tmpfs) == []
