"""The ARM cores QEMU can emulate, as the runtimes inside see them.

The runtimes choose their kernels (XNNPACK's NEON, dot-product and i8mm paths,
MLAS for aarch64) from what the CPU reports: the instruction sets in the ELF
auxiliary vector, which QEMU fills for the chosen ``-cpu``, and the core's MIDR
in /proc/cpuinfo, which XNNPACK's cpuinfo also needs to start at all. The
emulated root shows only these files, written for the chosen core: the host's
own /proc and /sys (an x86 CPU) make onnxruntime's cpuinfo probe crash under
emulation.

This module runs on both sides: the host writes the files, the worker inside
the root reads the instruction sets.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

#: QEMU's ``-cpu`` names this tool supports, with the MIDR QEMU gives each (target/arm/cpu64.c); ``max`` is
#: QEMU's every-feature core (SVE, i8mm, bf16) with its own implementer 0 and part 'Q', which no runtime knows.
MIDR: dict[str, int] = {
    "cortex-a53": 0x410FD034,
    "cortex-a72": 0x410FD083,
    "cortex-a76": 0x414FD0B1,
    "neoverse-n1": 0x414FD0C1,
    "max": 0x000F0510,
}
#: The cores ``verify --arch arm64`` runs on by default: an in-order core without the int8 dot product (older and
#: cheaper phones, Raspberry Pi 3) and a big core with it. ``max`` adds i8mm and SVE, at several times the cost.
DEFAULT_CPUS = ("cortex-a53", "cortex-a76")
#: The oldest QEMU that emulates a core right, where older ones do not. QEMU 7.2 runs ``max``'s SME (int8 outer
#: product) instructions wrong, and ai-edge-litert's int8 kernels, which choose SME there, answer noise: 9.5% top-1
#: agreement with x86 on the reference CNN's int8 file, bit-identical under 7.2 with ``sme=off`` and under 10.0.
MIN_QEMU = {"max": (10, 0)}

_AT_HWCAP, _AT_HWCAP2 = 16, 26
#: Linux arm64 HWCAP bits (uapi/asm/hwcap.h) that decide float and int8 kernels, by edgecnn.versions flag name.
_HWCAP = {"asimd": 1 << 1, "fphp": 1 << 9, "asimdhp": 1 << 10, "asimddp": 1 << 20, "sve": 1 << 22}
_HWCAP2 = {"sve2": 1 << 1, "i8mm": 1 << 13, "bf16": 1 << 14, "sme": 1 << 23, "sme2": 1 << 37}


def check_cpus(names: tuple[str, ...] | list[str]) -> list[str]:
    """The names, each checked against :data:`MIDR` (ValueError names the unknown one and the known ones)."""
    for name in names:
        if name not in MIDR:
            raise ValueError(f"unknown ARM CPU '{name}' (known: {', '.join(MIDR)})")
    return list(dict.fromkeys(names))


def check_emulator(cpus: list[str], version: tuple[int, ...]) -> None:
    """ValueError when QEMU ``version`` emulates one of ``cpus`` wrong (:data:`MIN_QEMU`)."""
    for cpu in cpus:
        if cpu in MIN_QEMU and version < MIN_QEMU[cpu]:
            wanted = ".".join(map(str, MIN_QEMU[cpu]))
            raise ValueError(f"QEMU {'.'.join(map(str, version))} emulates '{cpu}' wrong (its SME instructions, "
                             f"which the int8 kernels use there): install qemu-user-static {wanted} or later "
                             "(Debian 12: from bookworm-backports, as make setup does), or leave it out")


def cpuinfo_text(cpu: str, processors: int) -> str:
    """/proc/cpuinfo of ``processors`` cores of ``cpu``, as an arm64 Linux kernel writes it."""
    midr = MIDR[cpu]
    block = (f"BogoMIPS\t: 50.00\nCPU implementer\t: 0x{midr >> 24:02x}\nCPU architecture: 8\n"
             f"CPU variant\t: 0x{(midr >> 20) & 0xF:x}\nCPU part\t: 0x{(midr >> 4) & 0xFFF:03x}\n"
             f"CPU revision\t: {midr & 0xF}\n\n")
    return "".join(f"processor\t: {i}\n{block}" for i in range(processors))


def write_cpu_files(root: Path, cpu: str, processors: int) -> None:
    """The /proc/cpuinfo and /sys CPU lists the root's runtimes read, for ``cpu`` (plain files: no mounts)."""
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc" / "cpuinfo").write_text(cpuinfo_text(cpu, processors), encoding="ascii")
    cpus = root / "sys" / "devices" / "system" / "cpu"
    cpus.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present", "online"):
        (cpus / name).write_text(f"0-{processors - 1}\n" if processors > 1 else "0\n", encoding="ascii")


def hwcap_flags() -> list[str]:
    """The kernel-chosen instruction sets of the CPU this process runs on (on aarch64), by their cpuinfo names."""
    getauxval = ctypes.CDLL(None).getauxval
    getauxval.restype = ctypes.c_ulong
    getauxval.argtypes = [ctypes.c_ulong]
    hwcap, hwcap2 = getauxval(_AT_HWCAP), getauxval(_AT_HWCAP2)
    return ([name for name, bit in _HWCAP.items() if hwcap & bit]
            + [name for name, bit in _HWCAP2.items() if hwcap2 & bit])
