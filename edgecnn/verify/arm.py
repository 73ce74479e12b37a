"""Verify on ARM: each export run under emulated ARM cores, gated as on x86, and compared with the x86 run.

The ARM side runs the bundle's recorded runtime versions (aarch64 wheels, see
:mod:`edgecnn.arm64`) on the same test images, one process per file and core,
as many at once as this machine has cores. A row passes when it meets its
precision's gate against the reference; how it differs from the x86 run of the
same file (flips, how many of them near ties of the x86 output, max diff) is
reported beside it. No time is recorded: under emulation it says nothing about
the chip.
"""
from __future__ import annotations

import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import EdgecnnError
from ..metrics import ProbComparison, accuracy, compare_probs, top1
from ..versions import cpu_class
from .gates import Thresholds, thresholds_for
from .results import finite

ARCHES = ("arm64",)
MAX_FLIPS_LISTED = 100  # images flipped against x86 listed in verify.json


@dataclass
class ArmResult:
    """One export on one emulated core: gated against the reference, compared with x86."""

    key: str
    cpu: str
    cpu_class: dict[str, Any]
    emulator: str
    versions: dict[str, str | None]
    precision: str | None
    failures: list[str]
    images: int
    full_test_set: bool
    thresholds: Thresholds | None = None
    accuracy: float | None = None
    accuracy_delta_points: float | None = None
    comparison: ProbComparison | None = None  # against the reference
    versus_x86: ProbComparison | None = None  # against the same file run on this machine

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        c, x = self.comparison, self.versus_x86
        return {"export": self.key, "cpu": self.cpu, "cpu_class": self.cpu_class, "emulator": self.emulator,
                "versions": self.versions, "precision": self.precision, "images": self.images,
                "full_test_set": self.full_test_set, "accuracy": self.accuracy,
                "accuracy_delta_points": self.accuracy_delta_points,
                "agreement": c.agreement if c else None, "confident_agreement": c.confident_agreement if c else None,
                "flipped": c.flipped if c else None, "max_abs_diff": finite(c.max_abs_diff) if c else None,
                "x86": None if x is None else {
                    "agreement": x.agreement, "flipped": x.flipped, "near_tie_flips": x.near_tie_flips,
                    "max_abs_diff": finite(x.max_abs_diff),
                    "flipped_indices": x.flipped_indices[:MAX_FLIPS_LISTED].tolist()},
                "thresholds": self.thresholds.to_dict() if self.thresholds else None,
                "passed": self.passed, "failures": self.failures}


@dataclass
class ArmJob:
    """One file to run on ARM: its x86 probabilities, the recorded runtime versions, its precision."""

    key: str
    path: Any
    precision: str | None
    x86_probs: np.ndarray
    recorded: dict[str, str | None] = field(default_factory=dict)


def sample(count: int, images: int | None) -> np.ndarray:
    """The indices of ``images`` test images spread evenly over all ``count`` (every class of a sorted set)."""
    if images is None or images >= count:
        return np.arange(count)
    if images < 1:
        raise EdgecnnError(f"--images must be 1 or more, got {images}")
    return np.unique(np.round(np.linspace(0, count - 1, images)).astype(int))


def check_arch(arch: str, cpus: Sequence[str] | None) -> list[str]:
    """The cores to run on (default :data:`edgecnn.arm64.DEFAULT_CPUS`), after checking this host can emulate."""
    from ..arm64 import DEFAULT_CPUS, check_cpus, check_host

    if arch not in ARCHES:
        raise EdgecnnError(f"unknown --arch '{arch}' (known: {', '.join(ARCHES)})")
    try:
        chosen = check_cpus(list(cpus or DEFAULT_CPUS))
    except ValueError as exc:
        raise EdgecnnError(f"--cpu: {exc}") from None
    check_host(chosen)
    return chosen


def versions_key(recorded: dict[str, str | None] | None) -> tuple:
    return tuple(sorted((k, v) for k, v in (recorded or {}).items() if v))


def prepare(recorded_sets: Sequence[dict[str, str | None] | None], say: Callable[[str], None]) -> dict[tuple, Any]:
    """The emulated environment of each recorded version set (by :func:`versions_key`), built before any run: it
    may download, and says so."""
    from ..arm64 import setup

    envs: dict[tuple, Any] = {}
    for recorded in recorded_sets:
        if versions_key(recorded) not in envs:
            envs[versions_key(recorded)] = setup(recorded, say=say)
    return envs


def verify_on_arm(jobs: Sequence[ArmJob], cpus: Sequence[str], envs: dict[tuple, Any], x: np.ndarray,
                  y: np.ndarray, ref_probs: np.ndarray, gate: dict[str, float | None], *, full: bool,
                  on_images: Callable[[int, str], None], stage: Callable = shutil.copy2) -> list[ArmResult]:
    """Each job on each core, in parallel (one emulated process per host core); rows in (core, job) order."""
    from ..arm64 import run_file

    ref_accuracy = accuracy(top1(ref_probs), y)
    lock = threading.Lock()

    def one(task: tuple[str, ArmJob]) -> ArmResult:
        cpu, job = task

        def heard(n: int) -> None:
            with lock:
                on_images(n, f"{job.key} on {cpu}")

        env = envs[versions_key(job.recorded)]
        run = run_file(env, cpu, job.path, x, on_images=heard, stage=stage)
        return _judge(job, run, env.emulator, ref_probs, ref_accuracy, y, gate, full)

    tasks = [(cpu, job) for cpu in cpus for job in jobs]
    with ThreadPoolExecutor(max_workers=max(1, min(len(tasks), os.cpu_count() or 1))) as pool:
        return list(pool.map(one, tasks))


def _judge(job: ArmJob, run, emulator: str, ref_probs: np.ndarray, ref_accuracy: float, y: np.ndarray,
           gate: dict[str, float | None], full: bool) -> ArmResult:
    record = cpu_class(run.flags, "aarch64") | {"cpu": f"{run.cpu} (emulated)"}
    result = ArmResult(job.key, run.cpu, record, emulator, run.versions, job.precision or run.precision, [],
                       len(y), full)
    if run.error is not None:
        result.failures.append(f"cannot run on {run.cpu}: {run.error}")
        return result
    probs = run.probs
    if probs.shape != ref_probs.shape:
        result.failures.append(f"outputs {probs.shape} on {run.cpu}, the reference {ref_probs.shape}")
        return result
    try:
        result.thresholds = thresholds_for(result.precision, **gate)
    except EdgecnnError as exc:
        result.failures.append(str(exc))
    result.accuracy = accuracy(top1(probs), y)
    result.accuracy_delta_points = 100 * (result.accuracy - ref_accuracy)
    result.comparison = compare_probs(ref_probs, probs)
    result.versus_x86 = compare_probs(job.x86_probs, probs)
    if not np.isfinite(probs).all():
        result.failures.append(f"outputs contain NaN or infinity on {run.cpu}")
    if result.thresholds is not None:
        result.failures += [f"on {run.cpu}: {line}" for line in result.thresholds.check(
            max_abs_diff=result.comparison.max_abs_diff, agreement=result.comparison.confident_agreement,
            accuracy_delta_points=result.accuracy_delta_points)]
    return result
