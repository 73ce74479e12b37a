"""Verify's results: per export, per bundle folder and in all, as JSON and as the command's text."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle.schema import SCHEMA_VERSIONS, VERIFY_WHAT
from ..fileio import format_bytes
from ..metrics import NEAR_TIE_MARGIN, ProbComparison, per_class_accuracy
from ..versions import cpu_class, machine
from .compat import Compatibility
from .gates import Thresholds
from .reference import Reference


@dataclass
class ExportResult:
    """One export against its reference; ``failures`` empty means PASS."""

    key: str
    file: Path
    precision: str | None
    bytes: int | None
    thresholds: Thresholds | None
    failures: list[str]
    seconds: float = 0.0
    accuracy: float | None = None
    accuracy_delta_points: float | None = None
    comparison: ProbComparison | None = None
    matrix: np.ndarray | None = None
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    backend: str | None = None
    compatibility: Compatibility | None = None  # what a phone, GPU delegate or NPU runtime needs of the file

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "file": self.file.name, "precision": self.precision, "bytes": self.bytes,
            "images": c.images if c else None, "accuracy": self.accuracy,
            "accuracy_delta_points": self.accuracy_delta_points,
            "agreement": c.agreement if c else None, "flipped": c.flipped if c else None,
            "confident_agreement": c.confident_agreement if c else None,
            "near_tie_flips": c.near_tie_flips if c else None,
            "flipped_indices": c.flipped_indices.tolist() if c else None,
            "max_abs_diff": finite(c.max_abs_diff) if c else None,
            "mean_abs_diff": finite(c.mean_abs_diff) if c else None,
            "per_class_accuracy": per_class_accuracy(self.matrix) if self.matrix is not None else None,
            "confusion_matrix": self.matrix.tolist() if self.matrix is not None else None,
            "disagreements": self.disagreements,
            "thresholds": self.thresholds.to_dict() if self.thresholds else None,
            "passed": self.passed, "failures": self.failures, "seconds": round(self.seconds, 3),
            "compatibility": self.compatibility.to_dict() if self.compatibility else None,
        }

    def manifest_record(self, when: str) -> dict[str, Any]:
        c = self.comparison
        return {"passed": self.passed, "accuracy": self.accuracy, "accuracy_delta_points": self.accuracy_delta_points,
                "agreement": c.agreement if c else None, "max_abs_diff": finite(c.max_abs_diff) if c else None,
                "confident_agreement": c.confident_agreement if c else None,
                "failures": self.failures, "verified_at": when, "verified_on": cpu_class()}


def finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


@dataclass
class BundleReport:
    """The results for the targets of one folder, against that folder's reference."""

    folder: Path
    reference: Reference
    reference_accuracy: float
    reference_matrix: np.ndarray
    exports: list[ExportResult]
    cross_runtime: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    test_source: str | None = None  # where the test images came from
    class_names: list[str] | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.exports)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSIONS[VERIFY_WHAT],
            "folder": str(self.folder),
            "reference": {"kind": self.reference.kind, "file": str(self.reference.path),
                          "accuracy": self.reference_accuracy,
                          "per_class_accuracy": per_class_accuracy(self.reference_matrix),
                          "confusion_matrix": self.reference_matrix.tolist()},
            "exports": {r.key: r.to_dict() for r in self.exports},
            "cross_runtime": self.cross_runtime,
            "passed": self.passed,
            "notes": self.notes,
            "test_set": self.test_source,
            "class_names": self.class_names,
        }


@dataclass
class VerifyReport:
    bundles: list[BundleReport]
    created: str
    seconds: float
    stored: list[Path] = field(default_factory=list)  # the verify.json files written
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(b.passed for b in self.bundles)

    @property
    def rows(self) -> list[ExportResult]:
        return [r for b in self.bundles for r in b.exports]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSIONS[VERIFY_WHAT], "passed": self.passed, "created": self.created, "seconds": round(self.seconds, 2),
                "machine": machine(), "bundles": [b.to_dict() for b in self.bundles], "notes": self.notes}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.2e}"


def format_report(report: VerifyReport) -> str:
    """The table of every export, its failures, the cross-runtime lines and one final line."""
    lines = []
    head = (f"{'export':<16} {'precision':<9} {'size':>9} {'accuracy':>9} {'Δ (pts)':>8} {'agreement':>9} "
            f"{'no ties':>8} {'flipped':>7} {'max diff':>9}  result")
    for bundle in report.bundles:
        ref = bundle.reference
        lines.append(f"reference: {ref.why}; accuracy {_pct(bundle.reference_accuracy)} "
                     f"on {int(bundle.reference_matrix.sum()):,} test images"
                     + (f" ({bundle.test_source})" if bundle.test_source else ""))
        if bundle.class_names:
            lines.append(f"classes: {', '.join(bundle.class_names)}")
        lines += [head, "-" * len(head)]
        for r in bundle.exports:
            c = r.comparison
            delta = "-" if r.accuracy_delta_points is None else f"{r.accuracy_delta_points:+.2f}"
            lines.append(f"{r.key:<16} {r.precision or '-':<9} {format_bytes(r.bytes):>9} {_pct(r.accuracy):>9} {delta:>8} "
                         f"{_pct(c.agreement if c else None):>9} {_pct(c.confident_agreement if c else None):>8} "
                         f"{c.flipped if c else '-':>7} "
                         f"{_sci(c.max_abs_diff if c else None):>9}  {'PASS' if r.passed else 'FAIL'}")
        lines += [f"  {r.key}: {'; '.join(r.failures)}" for r in bundle.exports if r.failures]
        checked = [r for r in bundle.exports if r.compatibility]
        if checked:
            lines.append("mobile compatibility:")
            lines += [f"  {r.key}: {line}" for r in checked for line in r.compatibility.summary]
        lines += [f"cross-runtime {p['a']} vs {p['b']}: agreement {_pct(p['agreement'])}, max diff {_sci(p['max_abs_diff'])}"
                  for p in bundle.cross_runtime]
        lines += [f"note: {n}" for n in bundle.notes]
    lines += [f"note: {n}" for n in report.notes]
    lines.append(f"no ties: the gated agreement, on the images where the reference's top-1 leads by "
                 f"{NEAR_TIE_MARGIN:g} or more (a near tie flips under any rounding)")
    rows = report.rows
    failed = [r.key for r in rows if not r.passed]
    where = f"; results in {', '.join(map(str, report.stored))}" if report.stored else ""
    if failed:
        lines.append(f"FAIL: {len(failed)} of {len(rows)} exports failed ({', '.join(failed)}) "
                     f"in {report.seconds:.1f} s{where}")
    else:
        lines.append(f"PASS: all {len(rows)} exports match the reference in {report.seconds:.1f} s{where}")
    return "\n".join(lines)
