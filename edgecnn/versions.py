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
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp", "i8mm", "sve", "sme")


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


#: The int8 dot-product instructions (x86 VNNI, AVX-VNNI, AMX; ARM dotprod, i8mm, SME): int8 kernels are chosen by
#: them, so int8 speed, and on x86 without them the saturation of int8 products, differ between CPUs that have
#: them and CPUs that do not.
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm", "sme")


def cpu_class(flags: list[str] | None = None, arch: str | None = None) -> dict[str, object]:
    """This CPU as int8 results depend on it: model, architecture and int8 dot-product instructions."""
    flags = cpu_flags() if flags is None else flags
    return {"cpu": cpu_model(), "arch": arch or platform.machine(),
            "int8_dot": [flag for flag in INT8_DOT_FLAGS if flag in flags]}


def same_int8_class(a: dict, b: dict) -> bool:
    """Whether two :func:`cpu_class` records run int8 with the same kinds of kernels."""
    return a.get("arch") == b.get("arch") and sorted(a.get("int8_dot") or []) == sorted(b.get("int8_dot") or [])


def describe_cpu(record: dict) -> str:
    """``Intel Xeon (x86_64; int8 dot: avx512_vnni, amx_int8)``, as one line says it."""
    dot = ", ".join(record.get("int8_dot") or []) or "none"
    return f"{record.get('cpu')} ({record.get('arch')}; int8 dot product: {dot})"


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
