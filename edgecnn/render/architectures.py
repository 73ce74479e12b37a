"""The README's architecture x format table, written from ``bench/architectures.json`` (never typed by hand).

``bench/architectures.py`` trains Keras applications models briefly on real
images, exports them with every format and verifies them; this module turns what
it recorded into the block between ``<!-- architectures:start -->`` and
``<!-- architectures:end -->``, and a test checks the README against it.
"""
from __future__ import annotations

import os
from typing import Any

from .readme import replace_block
from .rows import fmt

START, END = "<!-- architectures:start -->", "<!-- architectures:end -->"


def architectures_markdown(record: dict[str, Any]) -> str:
    """Verify's verdict per format and architecture, then the export times and the delegate partitions."""
    runs, config, machine = record["architectures"], record["config"], record["machine"]
    names = list(runs)
    failed = {name: _failed_formats(run) for name, run in runs.items()}
    formats = list(dict.fromkeys([*(f for run in runs.values() for f in run["export"]["verify"]["exports"]),
                                  *(f for lines in failed.values() for f in lines)]))

    def row(label: str, cells: list[str]) -> str:
        return "| " + " | ".join([label, *cells]) + " |"

    head = [row("", [f"{name}<br>{run['train']['keras_class']}" for name, run in runs.items()]),
            "|---|" + "---:|" * len(names)]
    facts = [
        row("parameters", [f"{run['train']['params']:,}" for run in runs.values()]),
        row("Keras test accuracy", [fmt(run["train"]["test_accuracy"], ".1%") for run in runs.values()]),
        row("`export` (all formats)", [_export_time(run["export"]) for run in runs.values()]),
    ]
    verdicts = [row(f"`{f}`", [_cell(runs[n], f, failed[n]) for n in names]) for f in formats]
    delegate_labels = list(dict.fromkeys(label for run in runs.values() for label in run["delegate"]))
    delegate = [row(f"float32 TFLite, {label}", [_delegate_cell(runs[n]["delegate"].get(label)) for n in names])
                for label in delegate_labels]
    flags = ", ".join(machine.get("cpu_flags") or []) or "none listed"
    return "\n".join([
        "<!-- made by `python bench/architectures.py` from bench/architectures.json; do not edit by hand -->",
        f"Each model trained {config['epochs']} epochs on {config['train_images']:,} images "
        f"({config['data']}), then exported with the command shown and checked with `edgecnn verify` on "
        f"{config['test_images']:,} test images. A cell: verify's verdict, top-1 agreement with Keras (in "
        "brackets the gated one, near ties not counted), test accuracy.",
        "",
        *head, *facts, *verdicts,
        "",
        f"XNNPACK partitions and latency ({config['latency']}) of the float32 file, by how its batch is traced:",
        "",
        *head, *delegate,
        "",
        f"Measured on {machine.get('cpu', '?')} ({machine.get('cores', '?')} cores; {flags}), "
        f"{record.get('created', '?')[:10]}.",
    ])


def _failed_formats(run: dict[str, Any]) -> dict[str, str]:
    """Format -> export's one FAIL line, for the formats it could not write."""
    found = {}
    for line in run["export"]["fail_lines"]:
        words = line.split()
        if len(words) > 2 and words[2] == "not":  # "FAIL <format> not written: <why>"
            found[words[1]] = line
    return found


def _export_time(export: dict[str, Any]) -> str:
    if export["finished"]:
        return f"{export['seconds']:.0f} s"
    return (f"stopped after {export['seconds']:.0f} s; `--all-int8`: {export['all_int8']['seconds']:.0f} s")


def _cell(run: dict[str, Any], fmt_name: str, failed: dict[str, str]) -> str:
    result = run["export"]["verify"]["exports"].get(fmt_name)
    if result is None:
        return "not written" if fmt_name in failed else "—"
    verdict = "PASS" if result["passed"] else "FAIL"
    kept = run["export"]["float_layers"].get(fmt_name)
    mix = f", {kept} layer{'' if kept == 1 else 's'} float" if kept else ""
    gated = result.get("confident_agreement")
    ties = "" if gated is None else f" ({fmt(gated, '.1%')} no ties)"
    return f"{verdict} {fmt(result['agreement'], '.1%')}{ties} / {fmt(result['accuracy'], '.1%')}{mix}"


def _delegate_cell(measured: dict[str, Any] | None) -> str:
    if measured is None:
        return "—"
    count = measured["partitions"]
    return f"{count} partition{'' if count == 1 else 's'}, {measured['p50_ms']:.2f} ms"


def update_readme_architectures(readme: str | os.PathLike, record: dict[str, Any]) -> bool:
    """Rewrite the README's architectures block from ``record``; True when the file changed."""
    return replace_block(readme, START, END, lambda: architectures_markdown(record), "the architectures table")
