"""Library and machine versions recorded in every artifact, for provenance."""
from __future__ import annotations

import importlib.metadata
import datetime
import os
import platform


def package_versions(names: tuple[str, ...] = ("edgecnn", "numpy", "tensorflow", "keras", "tf2onnx", "onnx",
                                              "onnxruntime", "ai-edge-litert")) -> dict[str, str | None]:
    """Installed versions, read from package metadata (no heavy imports)."""
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def utc_now() -> str:
    """When an artifact was made: UTC, to the second, ISO 8601."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: CPU features that decide int8 and float kernel speed (x86 SIMD and 8-bit dot products; ARM's dot product).
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp", "i8mm", "sve")


def cpu_flags() -> list[str]:
    """The :data:`SPEED_FLAGS` this CPU lists in /proc/cpuinfo: int8 speed differs with them between machines."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    listed = set(line.split(":", 1)[1].split())
                    return [flag for flag in SPEED_FLAGS if flag in listed]
    except OSError:
        pass
    return []


def machine() -> dict[str, object]:
    """What a benchmark or a training time was measured on."""
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": package_versions(),
    }
