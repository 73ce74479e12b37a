"""Exports run on ARM cores without a device: the runtimes' official aarch64 wheels under QEMU user-mode.

Phones and boards round int8 in their own kernels (XNNPACK's NEON, dot-product
and i8mm paths; MLAS for aarch64), which verify on x86 never runs. QEMU
emulates the ARM instructions exactly, so the emulated runtimes compute what
the chips compute; only time means nothing under emulation (about 25x slower,
and unlike the chip's), so nothing here reports one. :mod:`.environment` builds
the cached root, :mod:`.run` runs a file in it, :mod:`.worker` is the process
inside.
"""
from __future__ import annotations

from .cpus import DEFAULT_CPUS, MIDR, check_cpus
from .environment import Arm64Env, cache_dir, check_host, setup
from .run import ArmRun, WorkerBug, run_file

__all__ = ["DEFAULT_CPUS", "MIDR", "Arm64Env", "ArmRun", "WorkerBug", "cache_dir", "check_cpus", "check_host",
           "run_file", "setup"]
