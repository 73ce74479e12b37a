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


def machine() -> dict[str, object]:
    """What a benchmark or a training time was measured on."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": package_versions(),
    }
