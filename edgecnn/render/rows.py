"""One row of figures per model file, merged from a bundle's result files, and the short table.

The pipeline's final table, the report's exports table and the README's figures
are all made from these rows, so they always show the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..bundle.files import MODEL_FILE
from ..bundle.results import Bundle
from ..bundle.schema import BenchRow
from ..fileio import format_bytes
from .arm64 import qemu_version

#: Bench modes, in the order their batch-1 latency is preferred for a model's row.
LATENCY_MODES = ("predictor", "keras.call", "keras.predict", "raw")

@dataclass
class ExportRow:
    """One model file's figures (``None`` = not measured)."""

    name: str
    file: str | None = None
    precision: str | None = None
    bytes: int | None = None
    accuracy: float | None = None
    delta_points: float | None = None
    agreement: float | None = None
    max_abs_diff: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    images_per_s: float | None = None
    throughput_batch: int | None = None
    passed: bool | None = None
    failures: list[str] = field(default_factory=list)


def _bench_rows(results: list[BenchRow], name: str) -> tuple[BenchRow | None, BenchRow | None]:
    """The batch-1 latency row and the largest-batch throughput row of ``name`` (preferred mode, fewest threads)."""
    mine = [r for r in results if r.name == name]
    rows = next((chosen for mode in LATENCY_MODES if (chosen := [r for r in mine if r.mode == mode])), mine)
    if not rows:
        return None, None
    rows = sorted(rows, key=lambda r: r.threads)
    latency = next((r for r in rows if r.batch_size == 1), None)
    widest = max(rows, key=lambda r: r.batch_size)
    return latency, widest


def browser_line(bundle: Bundle) -> str | None:
    """The browser's batch-1 p50 per ONNX export and the web app's size, from `bench --browser` rows."""
    from ..bench.browser import BROWSER_MODE

    rows = [r for r in (bundle.bench.results if bundle.bench else []) if r.mode == BROWSER_MODE]
    if not rows:
        return None
    sizes = [r.web_app_bytes for r in rows if r.web_app_bytes]
    size = f"; the self-contained web app (`edgecnn web`) is {format_bytes(max(sizes))}" if sizes else ""
    return ("In the browser (onnxruntime-web, wasm, 1 thread, headless Chromium), batch 1: " +
            ", ".join(f"{r.name} p50 {r.latency_s.p50 * 1e3:.3f} ms" for r in rows) + size + ".")


def export_rows(bundle: Bundle) -> list[ExportRow]:
    """Keras first, then every export in manifest order (then any that only verify or bench knows)."""
    manifest_exports = bundle.manifest.exports if bundle.manifest else {}
    verified = bundle.verify.exports if bundle.verify else {}
    results = bundle.bench.results if bundle.bench else []
    names = [*manifest_exports, *verified, *(r.name for r in results if r.name != "keras")]

    keras = ExportRow("keras", MODEL_FILE, "float32")
    model_file = bundle.folder / MODEL_FILE
    keras.bytes = model_file.stat().st_size if model_file.is_file() else None
    keras.accuracy = (bundle.verify.reference.accuracy if bundle.verify
                      else (bundle.metrics or {}).get("test_accuracy"))
    rows = [keras]
    for name in dict.fromkeys(names):
        entry, check = manifest_exports.get(name), verified.get(name)
        row = ExportRow(name)
        if entry:
            row.file, row.precision, row.bytes = entry.file, entry.precision, entry.bytes
        if check:
            row.file, row.precision, row.bytes = row.file or check.file, row.precision or check.precision, row.bytes or check.bytes
            row.accuracy, row.delta_points, row.agreement = check.accuracy, check.accuracy_delta_points, check.agreement
            row.max_abs_diff, row.passed, row.failures = check.max_abs_diff, check.passed, list(check.failures)
        rows.append(row)
    for row in rows:
        latency, widest = _bench_rows(results, row.name)
        if latency:
            row.p50_ms, row.p99_ms = 1000.0 * latency.latency_s.p50, 1000.0 * latency.latency_s.p99
        if widest:
            row.images_per_s, row.throughput_batch = widest.images_per_s, widest.batch_size
    return rows


def all_passed(rows: list[ExportRow]) -> bool | None:
    """True when every export passed its gate, False when one failed, None when none was verified."""
    judged = [r.passed for r in rows if r.name != "keras" and r.passed is not None]
    return all(judged) if judged else None


def fmt(value: Any, spec: str, suffix: str = "") -> str:
    """``value`` formatted with ``spec``, or a dash when it was not measured."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    return f"{value:{spec}}{suffix}"


def listed(value: Any) -> str:
    """A JSON list as "1, 32"; anything else as itself ("?" when absent)."""
    return ", ".join(map(str, value)) if isinstance(value, list) else str("?" if value is None else value)


def verdict(row: ExportRow) -> str:
    if row.name == "keras":
        return "reference"
    return "—" if row.passed is None else ("PASS" if row.passed else "FAIL")


#: The short table (pipeline's final table, README): header -> cell.
SHORT_COLUMNS: tuple[tuple[str, Callable[[ExportRow], str]], ...] = (
    ("model", lambda r: r.name),
    ("size", lambda r: format_bytes(r.bytes)),
    ("accuracy", lambda r: fmt(r.accuracy, ".4f")),
    ("Δ vs Keras", lambda r: "—" if r.name == "keras" else fmt(r.delta_points, "+.2f", " pt")),
    ("agreement", lambda r: "—" if r.name == "keras" else fmt(r.agreement, ".2%")),
    ("p50 latency", lambda r: fmt(r.p50_ms, ".3f", " ms")),
    ("verdict", verdict),
)


def short_table(rows: list[ExportRow]) -> tuple[list[str], list[list[str]]]:
    return [h for h, _ in SHORT_COLUMNS], [[cell(r) for _, cell in SHORT_COLUMNS] for r in rows]


def format_text_table(rows: list[ExportRow]) -> str:
    """The short table as aligned text (names left, figures right)."""
    head, body = short_table(rows)
    widths = [max(len(x) for x in column) for column in zip(head, *body)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 or i == len(cells) - 1 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(head), "-" * len(line(head))] + [line(cells) for cells in body])


def mixed_scores(mixed: dict[str, Any]) -> str:
    """What a mixed-precision choice reached on its validation images (the manifest's ``mixed_precision``), in
    the measure its budget was in: accuracy on labelled images, or agreement with float on unlabelled ones."""
    agreement, gate = mixed.get("agreement"), mixed.get("min_agreement")
    with_float = "" if agreement is None else f", agreement with float {agreement:.2%} (near ties not counted)"
    verify_gate = mixed.get("agreement_gate")
    with_float += "" if gate is None else f" against {gate:.2%}" + (
        f" (verify's gate {verify_gate:.1%} + a margin for the validation sample)" if verify_gate else "")
    if mixed.get("measure", "accuracy") == "agreement":
        return (f"agreement with float: all int8 {mixed['all_int8_accuracy']:.2%}, this mix {mixed['accuracy']:.2%} "
                f"(budget: at most {mixed['max_accuracy_drop_points']:g} points of disagreement)")
    return (f"accuracy: float {mixed['float_accuracy']:.2%}, all int8 {mixed['all_int8_accuracy']:.2%}, this mix "
            f"{mixed['accuracy']:.2%}{with_float} (budget: at most {mixed['max_accuracy_drop_points']:g} points below "
            "float)")


#: The columns of the ARM table (verify --arch arm64), shared by the report and the README figures.
ARM_HEADERS = ["export", "core (int8 dot)", "QEMU", "images", "no ties vs Keras", "vs x86", "flips (near ties)",
               "max diff vs x86", "verdict"]
#: What the ARM table's reader must know: where the figures come from, and why there is no time.
ARM_CAPTION = ("Each export run on emulated ARM cores (the runtimes' aarch64 wheels under QEMU user-mode, "
               "`edgecnn verify --arch arm64`), gated as on x86; *vs x86*: against the same file run on x86; near "
               "ties: flips where the x86 run's top-1 led by less than 0.1. No times: emulated times say nothing "
               "about a chip.")


def arm_table(bundle: Bundle) -> list[list[str]]:
    """One row per export and emulated core from verify.json's ``arm64`` rows (empty: never run)."""
    rows = []
    for r in bundle.verify.arm64 if bundle.verify else []:
        dot = ", ".join(r.cpu_class.get("int8_dot") or []) or "none"
        x = r.x86
        rows.append([r.export, f"{r.cpu} ({dot})", qemu_version(r.emulator), f"{r.images:,}" + ("" if r.full_test_set else " (subset)"),
                     fmt(r.confident_agreement, ".2%"), fmt(x.agreement if x else None, ".2%"),
                     f"{x.flipped} ({x.near_tie_flips})" if x else "—", fmt(x.max_abs_diff if x else None, ".2e"),
                     "PASS" if r.passed else "FAIL"])
    return rows

