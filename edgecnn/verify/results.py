"""Verify's results: per export, per bundle folder and in all, as JSON and as the command's text."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..bundle.schema import SCHEMA_VERSIONS, VERIFY_WHAT
from ..fileio import format_bytes
from ..metrics import NEAR_TIE_MARGIN, ProbComparison, per_class_accuracy
from ..versions import cpu_class, machine
from .compat import Compatibility
from .gates import Thresholds
from .reference import Reference

if TYPE_CHECKING:
    from .arm import ArmResult


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
    arm: list["ArmResult"] = field(default_factory=list)  # verify --arch arm64: one row per export and core

    @property
    def passed(self) -> bool:
        return all(r.passed for r in [*self.exports, *self.arm])

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
            "arm64": [r.to_dict() for r in self.arm],
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
        if bundle.arm:
            lines += format_arm(bundle.arm)
        lines += [f"note: {n}" for n in bundle.notes]
    lines += [f"note: {n}" for n in report.notes]
    lines.append(f"no ties: the gated agreement, on the images where the reference's top-1 leads by "
                 f"{NEAR_TIE_MARGIN:g} or more (a near tie flips under any rounding)")
    rows = report.rows
    arm = [r for b in report.bundles for r in b.arm]
    failed = [r.key for r in rows if not r.passed] + [f"{r.key} on {r.cpu}" for r in arm if not r.passed]
    where = f"; results in {', '.join(map(str, report.stored))}" if report.stored else ""
    runs = f"{len(rows)} exports" + (f" and {len(arm)} ARM runs" if arm else "")
    if failed:
        lines.append(f"FAIL: {len(failed)} of {runs} failed ({', '.join(failed)}) in {report.seconds:.1f} s{where}")
    else:
        lines.append(f"PASS: all {runs} match the reference in {report.seconds:.1f} s{where}")
    return "\n".join(lines)


def format_arm(rows: list["ArmResult"]) -> list[str]:
    """The ARM table: each export on each emulated core, against the reference and against this machine's run."""
    head = (f"{'export':<16} {'core':<11} {'int8 dot':<14} {'images':>6} {'accuracy':>9} {'no ties':>8} "
            f"{'vs x86':>8} {'flips':>5} {'ties':>4} {'max diff':>9}  result")
    lines = [f"on arm64, emulated ({rows[0].emulator}; no times: emulation runs about 25x slower than a chip, "
             "and unevenly, so its times say nothing about one)", head, "-" * len(head)]
    for r in rows:
        c, x = r.comparison, r.versus_x86
        dot = ", ".join(r.cpu_class.get("int8_dot") or []) or "none"
        lines.append(f"{r.key:<16} {r.cpu:<11} {dot:<14} {r.images:>6} {_pct(r.accuracy):>9} "
                     f"{_pct(c.confident_agreement if c else None):>8} {_pct(x.agreement if x else None):>8} "
                     f"{x.flipped if x else '-':>5} {x.near_tie_flips if x else '-':>4} "
                     f"{_sci(x.max_abs_diff if x else None):>9}  {'PASS' if r.passed else 'FAIL'}")
    lines += [f"  {r.key} on {r.cpu}: {'; '.join(r.failures)}" for r in rows if r.failures]
    lines.append("vs x86: top-1 agreement with this machine's run of the same file; flips: images whose top-1 "
                 "differs from it, ties: how many of those the x86 run had near a tie; max diff: against it")
    if not all(r.full_test_set for r in rows):
        lines.append(f"note: {rows[0].images} test images spread over the set, not all: a pass here does not "
                     "count as verified on that core")
    return lines
