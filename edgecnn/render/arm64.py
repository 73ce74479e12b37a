"""bench/RESULTS.md's table of where ARM and x86 disagree, from what ``bench/arm64.py`` recorded.

bench/run_benchmarks.py keeps this block as it was: the scripts run at
different times, each saying its own machine.
"""
from __future__ import annotations

import re

START, END = "<!-- arm64:start -->", "<!-- arm64:end -->"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def qemu_version(emulator: str) -> str:
    """"7.2.22" of "qemu-aarch64 version 7.2.22 (Debian ...)"."""
    found = re.search(r"version ([0-9.]+)", emulator)
    return found.group(1) if found else emulator


def render(record: dict) -> str:
    """The block: one row per bundle, export and core, then the totals and the machine."""
    m = record["machine"]
    emulators = sorted({row["emulator"] for case in record["cases"] for row in case["rows"]})
    lines = [f"Written by `python bench/arm64.py` on {record['created']}: `edgecnn verify --arch arm64` on each "
             f"bundle, the runtimes' aarch64 wheels under {' and '.join(emulators)} (the *QEMU* of each row). "
             "*vs x86*: the same file run on this machine; *ties*: how many of the flips were near ties of the "
             "x86 run (its top-1 leading by less than 0.1). No times: emulated times say nothing about a chip.", "",
             "| model | export | core (int8 dot) | QEMU | images | no ties vs Keras | gate | vs x86 | flips (ties) | "
             "max diff vs x86 |", "|---|---|---|---|---:|---:|---|---:|---:|---:|"]
    flips = ties = runs = 0
    for case in record["cases"]:
        for row in case["rows"]:
            x = row["x86"] or {}
            dot = ", ".join(row["cpu_class"].get("int8_dot") or []) or "none"
            diff = x.get("max_abs_diff")
            lines.append(f"| {case['name']} | {row['export']} | {row['cpu']} ({dot}) | "
                         f"{qemu_version(row['emulator'])} | {row['images']:,} | "
                         f"{_pct(row['confident_agreement'])} | {'PASS' if row['passed'] else 'FAIL'} | "
                         f"{_pct(x.get('agreement'))} | {x.get('flipped', '-')} ({x.get('near_tie_flips', '-')}) | "
                         f"{'-' if diff is None else f'{diff:.2e}'} |")
            runs += 1
            flips += x.get("flipped") or 0
            ties += x.get("near_tie_flips") or 0
    lines += ["", f"In all: {flips} images flipped against x86 in {runs} runs, {ties} of them near ties.", "",
              f"Machine: {m['cpu']} ({m['cores']} cores; {', '.join(m['cpu_flags'])})."]
    return "\n".join(lines)
