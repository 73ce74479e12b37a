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
from ..fileio import format_bytes

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


def _bench_rows(results: list[dict], name: str) -> tuple[dict | None, dict | None]:
    """The batch-1 latency row and the largest-batch throughput row of ``name`` (preferred mode, fewest threads)."""
    mine = [r for r in results if isinstance(r, dict) and r.get("name") == name]
    rows = next((chosen for mode in LATENCY_MODES if (chosen := [r for r in mine if r.get("mode") == mode])), mine)
    if not rows:
        return None, None
    rows = sorted(rows, key=lambda r: (r.get("threads") is None, r.get("threads") or 0))
    latency = next((r for r in rows if r.get("batch_size") == 1), None)
    widest = max(rows, key=lambda r: r.get("batch_size") or 0)
    return latency, widest


def _ms(result: dict, key: str) -> float | None:
    value = (result.get("latency_s") or {}).get(key)
    return None if value is None else 1000.0 * float(value)


def export_rows(bundle: Bundle) -> list[ExportRow]:
    """Keras first, then every export in manifest order (then any that only verify or bench knows)."""
    manifest_exports = (bundle.manifest or {}).get("exports", {})
    verified = (bundle.verify or {}).get("exports") or {}
    results = (bundle.bench or {}).get("results") or []
    names = list(manifest_exports) + list(verified)
    names += [r.get("name") for r in results if isinstance(r, dict) and r.get("name") not in ("keras", None)]

    keras = ExportRow("keras", MODEL_FILE, "float32")
    model_file = bundle.folder / MODEL_FILE
    keras.bytes = model_file.stat().st_size if model_file.is_file() else None
    reference = (bundle.verify or {}).get("reference")
    keras.accuracy = (reference.get("accuracy") if isinstance(reference, dict)
                      else (bundle.metrics or {}).get("test_accuracy"))
    rows = [keras]
    for name in dict.fromkeys(names):
        entry, check = manifest_exports.get(name) or {}, verified.get(name) or {}
        rows.append(ExportRow(
            name, entry.get("file") or check.get("file"), entry.get("precision") or check.get("precision"),
            entry.get("bytes") or check.get("bytes"), check.get("accuracy"), check.get("accuracy_delta_points"),
            check.get("agreement"), check.get("max_abs_diff"), passed=check.get("passed"),
            failures=[str(f) for f in check.get("failures") or []]))
    for row in rows:
        latency, widest = _bench_rows(results, row.name)
        if latency:
            row.p50_ms, row.p99_ms = _ms(latency, "p50"), _ms(latency, "p99")
        if widest:
            row.images_per_s, row.throughput_batch = widest.get("images_per_s"), widest.get("batch_size")
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
