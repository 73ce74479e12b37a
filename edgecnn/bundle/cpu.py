"""Whether this CPU is one an export was timed and verified on, in the int8 sense (see :func:`edgecnn.versions.cpu_class`).

int8 files are chosen and proven on one machine and run on others. Their
speed (which layers mixed precision kept float for latency) and, on x86 without
an int8 dot product, their accuracy can differ on a CPU of another class, so
predict and bench say so in one line, with the command that settles it here.
"""
from __future__ import annotations

from pathlib import Path

from ..versions import cpu_class, describe_cpu, same_int8_class
from .schema import ExportRecord

#: Precisions whose kernels depend on the CPU's int8 instructions.
INT8_PRECISIONS = ("int8", "int16x8", "dynamic")


def passed_on(earlier: list[dict], now: dict, passed: bool) -> list[dict]:
    """The CPU classes a file has passed verify on, ``now`` added when it passed (one record per class)."""
    kept = [record for record in earlier if isinstance(record, dict)]
    if passed and not any(same_int8_class(record, now) for record in kept):
        kept.append(now)
    return kept


def cpu_notes(entry: ExportRecord, folder: Path, model_file: str | None) -> list[str]:
    """One line each: int8 layers timed on another class of CPU; never verified on this class of CPU."""
    if entry.precision not in INT8_PRECISIONS:
        return []
    here, notes = cpu_class(), []
    timed = entry.exported_on
    if timed and entry.layers and any(layer.float32_s is not None for layer in entry.layers) \
            and not same_int8_class(timed, here):
        model = f" --model {Path(folder) / model_file}" if model_file else ""
        notes.append(f"{entry.file}: its int8 layers were timed on {describe_cpu(timed)}; this CPU is "
                     f"{describe_cpu(here)}, where int8 speed differs: re-export here to choose for it "
                     f"(edgecnn export{model} --out {folder})")
    stamp = entry.verify
    if stamp is not None and stamp.verified_on is not None \
            and not any(same_int8_class(record, here) for record in stamp.passed_on):
        where = "; ".join(describe_cpu(record) for record in stamp.passed_on) or "no CPU"
        notes.append(f"{entry.file} passed verify on {where}, never on this class of CPU, {describe_cpu(here)}: "
                     f"run `edgecnn verify {folder}` here")
    return notes
