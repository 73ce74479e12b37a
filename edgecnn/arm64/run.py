"""Run one model file on images under an emulated ARM core, and get its probabilities back.

Each file runs in its own emulated process (``python3 -m edgecnn.arm64.worker``
in a chroot, by qemu-aarch64-static), so a runtime that crashes on ARM fails
that file alone. The worker is this installed edgecnn, copied into the job
folder, so the ARM side runs the same Predictor code as a device would. Each
process runs one runtime thread: the kernels a core chooses decide its results,
not the thread count, and one process per host core makes emulation bearable.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from ..fileio import write_json
from .environment import QEMU_IN_ROOT, Arm64Env, core_root

#: What the job's staging may leave out of the worker's copy of edgecnn.
_NOT_STAGED = shutil.ignore_patterns("__pycache__", "*.pyc", "web")


@dataclass
class ArmRun:
    """What one file did on one emulated core: its probabilities, or the one-line reason it could not run."""

    cpu: str
    flags: list[str]  # the instruction sets the emulated core reported to the runtimes
    versions: dict[str, str | None]
    probs: np.ndarray | None = None
    backend: str | None = None
    precision: str | None = None
    error: str | None = None


class WorkerBug(RuntimeError):
    """The worker raised something other than a model file's own error: a bug, not a result."""


def run_file(env: Arm64Env, cpu: str, model: Path, x: np.ndarray, *, on_images: Callable[[int], None] = lambda n: None,
             stage: Callable[[Path, Path], None] = shutil.copy2, batch: int = 1000) -> ArmRun:
    """``model`` run on all of ``x`` under QEMU's ``cpu``; ``on_images`` hears each batch done; ``stage`` copies
    the model into the root (a test swaps it to alter the ARM side only)."""
    root = core_root(env, cpu)
    _remove_orphans(root / "tmp")
    job = Path(tempfile.mkdtemp(prefix=f"edgecnn-job-{os.getpid()}-", dir=root / "tmp"))
    try:
        return _run_job(env, root, cpu, job, model, x, on_images, stage, batch)
    finally:
        shutil.rmtree(job, ignore_errors=True)


def _remove_orphans(tmp: Path) -> None:
    """Job folders of processes that are gone (killed before they could remove their own)."""
    for job in tmp.glob("edgecnn-job-*"):
        pid = job.name.split("-")[2]
        if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
            shutil.rmtree(job, ignore_errors=True)


def _run_job(env: Arm64Env, root: Path, cpu: str, job: Path, model: Path, x: np.ndarray, on_images, stage,
             batch: int) -> ArmRun:
    import edgecnn

    shutil.copytree(Path(edgecnn.__file__).parent, job / "code" / "edgecnn", ignore=_NOT_STAGED)
    stage(model, job / model.name)
    np.save(job / "x.npy", np.ascontiguousarray(x))  # as verify gives it: uint8 pixels or floats in [0, 1]
    write_json(job / "job.json", {"file": model.name, "batch": batch})
    inside = "/" + str(job.relative_to(root))
    command = [shutil.which("chroot") or "chroot", str(root), QEMU_IN_ROOT, "-cpu", cpu,
               "/usr/bin/python3", "-m", "edgecnn.arm64.worker", inside]
    environment = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8",
                   "PYTHONPATH": f"{inside}/code:{env.site_in_root}", "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(job / "stderr.txt", "w+", encoding="utf-8") as log:  # a file: a chatty runtime cannot block the pipe
        with subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=log, text=True) as proc:
            for line in proc.stdout:
                if line.startswith("images "):
                    on_images(int(line.split()[1]))
        log.seek(0)
        stderr = log.read()
    result_file = job / "result.json"
    if proc.returncode != 0 or not result_file.is_file():
        if proc.returncode < 0:  # the runtime itself died on ARM: that file's result
            return ArmRun(cpu, [], {}, error=f"the runtime crashed on {cpu} (signal {-proc.returncode})")
        tail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {proc.returncode}"
        raise WorkerBug(f"the arm64 worker failed on {model.name} ({cpu}): {tail}")
    result = json.loads(result_file.read_text(encoding="utf-8"))
    probs = np.load(job / "probs.npy", allow_pickle=False) if result.get("error") is None else None
    return ArmRun(cpu, result["flags"], result["versions"], probs, result.get("backend"), result.get("precision"),
                  result.get("error"))
