"""Prove each export is the trained model: every test image, compared with the reference, gated.

The reference is the Keras model when TensorFlow can be imported, else the
probabilities the exporter saved (``reference_probs.npy``), so a device with
only the base install can verify the files it was shipped. An export passes
when it meets the gate of its precision (:data:`GATES`); a file whose sha256
differs from its manifest entry fails as tampered without being run.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

import click
import numpy as np

from .bundle import (MANIFEST_FILE, MODEL_FILE, REFERENCE_LABELS_FILE, REFERENCE_PROBS_FILE, VERIFY_FILE,
                     default_bundle, read_manifest, update_manifest)
from .data import load_dataset
from .errors import EdgecnnError, MissingExtraError, first_line
from .fileio import ensure_writable_file, format_bytes, read_json, read_npy, sha256_file, write_json
from .metrics import ProbComparison, accuracy, compare_probs, confusion_matrix, per_class_accuracy, top1
from .versions import machine, utc_now

BATCH = 1000  # images per runtime call: large batches keep the 10,000-image pass fast
MAX_DISAGREEMENTS = 100  # flipped images listed in detail in verify.json


@dataclass(frozen=True)
class Thresholds:
    """A gate; ``None`` means that figure is not gated."""

    atol: float | None = None  # max abs probability difference
    min_agreement_pct: float | None = None  # top-1 agreement with the reference, percent
    max_accuracy_drop_points: float | None = None  # accuracy below the reference, percentage points

    def check(self, *, max_abs_diff: float, agreement: float, accuracy_delta_points: float) -> list[str]:
        """One message per threshold that is not met (empty when the gate passes)."""
        failures = []
        if self.atol is not None and not max_abs_diff <= self.atol:
            failures.append(f"max abs diff {max_abs_diff:.3g} > {self.atol:g}")
        if self.min_agreement_pct is not None and not 100 * agreement >= self.min_agreement_pct - 1e-9:
            failures.append(f"agreement {100 * agreement:.2f}% < {self.min_agreement_pct:g}%")
        drop = -accuracy_delta_points
        if self.max_accuracy_drop_points is not None and not drop <= self.max_accuracy_drop_points + 1e-9:
            failures.append(f"accuracy drop {drop:.2f} points > {self.max_accuracy_drop_points:g}")
        return failures

    def to_dict(self) -> dict[str, float | None]:
        return {"atol": self.atol, "min_agreement_pct": self.min_agreement_pct,
                "max_accuracy_drop_points": self.max_accuracy_drop_points}


#: Default gates per precision (the issue's acceptance thresholds).
GATES: dict[str, Thresholds] = {
    "float32": Thresholds(atol=1e-4, min_agreement_pct=99.9),
    "float16": Thresholds(atol=1e-2, min_agreement_pct=99.5),
    "dynamic": Thresholds(min_agreement_pct=98.5, max_accuracy_drop_points=1.0),
    "int8": Thresholds(min_agreement_pct=98.5, max_accuracy_drop_points=1.0),
}
_PRECISION_ALIASES = {"fp32": "float32", "fp16": "float16", "dynamic-range": "dynamic", "dynamic_range": "dynamic",
                      "uint8": "int8", "full-int8": "int8"}


def gate_name(precision: str | None) -> str | None:
    """The :data:`GATES` key of a precision, its alias resolved."""
    return _PRECISION_ALIASES.get(precision, precision) if precision else None


def thresholds_for(precision: str, *, atol: float | None = None, min_agreement: float | None = None,
                   max_accuracy_drop: float | None = None) -> Thresholds:
    """The default gate of ``precision``, with each given override applied to it."""
    gate = GATES.get(gate_name(precision))
    if gate is None:
        raise EdgecnnError(f"no default gate for precision '{precision}' (known: {', '.join(GATES)})")
    overrides = {"atol": atol, "min_agreement_pct": min_agreement, "max_accuracy_drop_points": max_accuracy_drop}
    return replace(gate, **{k: v for k, v in overrides.items() if v is not None})


def check_overrides(atol: float | None, min_agreement: float | None, max_accuracy_drop: float | None) -> None:
    if atol is not None and not atol >= 0:
        raise EdgecnnError(f"--atol must be 0 or more, got {atol}")
    if min_agreement is not None and not 0 <= min_agreement <= 100:
        raise EdgecnnError(f"--min-agreement is a percentage in 0..100, got {min_agreement}")
    if max_accuracy_drop is not None and not max_accuracy_drop >= 0:
        raise EdgecnnError(f"--max-accuracy-drop must be 0 or more points, got {max_accuracy_drop}")


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """One file to verify and, when its folder's manifest lists it, its manifest entry."""

    folder: Path
    key: str  # the manifest's format key, else the file name
    path: Path
    entry: dict[str, Any] | None


def resolve_targets(targets: Iterable[str | os.PathLike] | None) -> dict[Path, list[Target]]:
    """Bundle folders and model files -> targets grouped by folder (a folder has one reference)."""
    groups: dict[Path, list[Target]] = {}
    for raw in list(targets or []) or [default_bundle()]:
        path = Path(raw)
        if not path.exists():
            raise EdgecnnError(f"{path} not found (expected a bundle folder with {MANIFEST_FILE} "
                               "or an exported model file)")
        folder = path if path.is_dir() else path.parent
        manifest = _manifest_of(folder, required=path.is_dir())
        exports = manifest.get("exports", {}) if manifest else {}
        if path.is_dir():
            if not exports:
                raise EdgecnnError(f"{folder / MANIFEST_FILE} lists no exports "
                                   "(run `edgecnn export` first)")
            found = [Target(folder, key, folder / entry["file"], entry) for key, entry in exports.items()]
        else:
            key, entry = next(((k, e) for k, e in exports.items() if (folder / e["file"]).resolve() == path.resolve()),
                              (path.name, None))
            found = [Target(folder, key, path, entry)]
        group = groups.setdefault(folder, [])
        group += [t for t in found if t.key not in {g.key for g in group}]
    return groups


def _manifest_of(folder: Path, *, required: bool) -> dict[str, Any] | None:
    if (folder / MANIFEST_FILE).exists():  # a folder in its place is read_manifest's one-line error
        return read_manifest(folder)
    if required:
        raise EdgecnnError(f"{folder} has no {MANIFEST_FILE}: not an exported bundle (run `edgecnn export` first)")
    return None


# --------------------------------------------------------------------------- reference


@dataclass
class Reference:
    kind: str  # "keras" or "reference_probs.npy"
    path: Path
    why: str  # said in the output: which reference and why
    manifest_reference: dict[str, Any] | None = None  # the exporter's "reference" section (sha256 of the .npy files)
    probs: np.ndarray | None = None


def find_reference(folder: Path, manifest: dict[str, Any] | None, explicit: Path | None) -> Reference:
    """Choose the reference cheaply (no inference yet); one-line error when there is none."""
    if explicit is not None:
        if not explicit.is_file():
            raise EdgecnnError(f"reference model {explicit} not found")
        if not _tensorflow_importable():
            raise MissingExtraError(f"--reference {explicit} needs TensorFlow, which is not installed; "
                                    f"without it verify uses {REFERENCE_PROBS_FILE} from the bundle")
        return Reference("keras", explicit, f"Keras model {explicit}")
    keras_path = folder / ((manifest or {}).get("model") or {}).get("file", MODEL_FILE)
    probs_path = folder / REFERENCE_PROBS_FILE
    if keras_path.is_file() and _tensorflow_importable():
        return Reference("keras", keras_path, f"Keras model {keras_path}")
    reason = "TensorFlow not installed" if keras_path.is_file() else f"{keras_path} not found"
    if probs_path.is_file():
        return Reference(REFERENCE_PROBS_FILE, probs_path, f"{probs_path} saved at export time ({reason})",
                         (manifest or {}).get("reference"))
    raise EdgecnnError(f"no reference to verify {folder} against: {reason} and {probs_path} not found")


def _tensorflow_importable() -> bool:
    from . import tfquiet

    try:
        tfquiet.tensorflow()
    except MissingExtraError:
        return False
    return True


def load_saved_probs(ref: Reference, labels: np.ndarray) -> np.ndarray:
    """The saved reference probabilities, checked against the test set in use."""
    recorded = (ref.manifest_reference or {}).get("probs_sha256")
    if recorded and sha256_file(ref.path) != recorded:
        raise EdgecnnError(f"{ref.path} does not match the sha256 in its manifest: the reference itself was altered")
    probs = read_npy(ref.path)
    if probs.ndim != 2 or len(probs) != len(labels) or not np.issubdtype(probs.dtype, np.floating):
        raise EdgecnnError(f"{ref.path} holds {probs.dtype} {probs.shape}, expected float probabilities "
                           f"(N, classes) for the {len(labels)} test images in use")
    saved_labels = ref.path.parent / REFERENCE_LABELS_FILE
    if saved_labels.is_file() and not np.array_equal(read_npy(saved_labels), labels):
        raise EdgecnnError(f"{saved_labels} does not match the test labels in use: "
                           f"{ref.path.name} was computed on another test set")
    return probs.astype(np.float32, copy=False)


# --------------------------------------------------------------------------- results


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
            "flipped_indices": c.flipped_indices.tolist() if c else None,
            "max_abs_diff": _finite(c.max_abs_diff) if c else None,
            "mean_abs_diff": _finite(c.mean_abs_diff) if c else None,
            "per_class_accuracy": per_class_accuracy(self.matrix) if self.matrix is not None else None,
            "confusion_matrix": self.matrix.tolist() if self.matrix is not None else None,
            "disagreements": self.disagreements,
            "thresholds": self.thresholds.to_dict() if self.thresholds else None,
            "passed": self.passed, "failures": self.failures, "seconds": round(self.seconds, 3),
        }

    def manifest_record(self, when: str) -> dict[str, Any]:
        c = self.comparison
        return {"passed": self.passed, "accuracy": self.accuracy, "accuracy_delta_points": self.accuracy_delta_points,
                "agreement": c.agreement if c else None, "max_abs_diff": _finite(c.max_abs_diff) if c else None,
                "failures": self.failures, "verified_at": when}


def _finite(value: float) -> float | None:
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

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.exports)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "reference": {"kind": self.reference.kind, "file": str(self.reference.path),
                          "accuracy": self.reference_accuracy,
                          "per_class_accuracy": per_class_accuracy(self.reference_matrix),
                          "confusion_matrix": self.reference_matrix.tolist()},
            "exports": {r.key: r.to_dict() for r in self.exports},
            "cross_runtime": self.cross_runtime,
            "passed": self.passed,
            "notes": self.notes,
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
        return {"passed": self.passed, "created": self.created, "seconds": round(self.seconds, 2),
                "machine": machine(), "bundles": [b.to_dict() for b in self.bundles], "notes": self.notes}


# --------------------------------------------------------------------------- running


def verify(targets: Iterable[str | os.PathLike] | None = None, *, reference: str | os.PathLike | None = None,
           atol: float | None = None, min_agreement: float | None = None, max_accuracy_drop: float | None = None,
           data_dir: str | os.PathLike | None = None, json_path: str | os.PathLike | None = None,
           progress: bool = True) -> VerifyReport:
    """Verify exports (bundle folders or model files; default: the default bundle) on the whole test set.

    Results go to each folder's verify.json and manifest (a read-only folder gets a
    note instead) and, with ``json_path``, to one JSON file. Bad input raises
    :class:`EdgecnnError`; a failed gate does not raise: see ``report.passed``.
    """
    check_overrides(atol, min_agreement, max_accuracy_drop)
    if json_path is not None:
        ensure_writable_file(json_path, "--json")
    started = time.perf_counter()
    groups = resolve_targets(targets)
    explicit = Path(reference) if reference is not None else None
    data = load_dataset(data_dir, allow_download=False)
    manifests = {folder: _manifest_of(folder, required=False) for folder in groups}
    refs = {folder: find_reference(folder, manifests[folder], explicit) for folder in groups}
    x_test, y_test = data.x_test, data.y_test
    gate = {"atol": atol, "min_agreement": min_agreement, "max_accuracy_drop": max_accuracy_drop}

    keras_runs = sum(ref.kind == "keras" for ref in refs.values())
    total = len(y_test) * (sum(len(t) for t in groups.values()) + keras_runs)
    bundles = []
    with click.progressbar(length=total, label="verifying", file=sys.stderr, hidden=not progress,
                           item_show_func=lambda item: item) as bar:
        for folder, folder_targets in groups.items():
            ref = refs[folder]
            ref.probs = (_predict(ref.path, x_test, bar, "reference")[0] if ref.kind == "keras"
                         else load_saved_probs(ref, y_test))
            bundle = _verify_bundle(folder, ref, folder_targets, x_test, y_test, gate, bar)
            bundle.notes += _reference_notes(ref, manifests[folder])
            bundles.append(bundle)
    created = utc_now()
    report = VerifyReport(bundles, created, time.perf_counter() - started)
    for bundle in bundles:
        if manifests[bundle.folder] is not None:
            _store(bundle, set(manifests[bundle.folder]["exports"]), report)
    if json_path is not None:
        write_json(json_path, report.to_dict())
    return report


def _verify_bundle(folder: Path, ref: Reference, targets: list[Target], x_test: np.ndarray, y_test: np.ndarray,
                   gate: dict[str, float | None], bar) -> BundleReport:
    classes = ref.probs.shape[1]
    ref_labels = top1(ref.probs)
    ref_accuracy = accuracy(ref_labels, y_test)
    probs_of: dict[str, np.ndarray] = {}
    results = []
    for target in targets:
        result, probs = _verify_one(target, ref.probs, ref_accuracy, x_test, y_test, gate, bar)
        results.append(result)
        if probs is not None:
            probs_of[target.key] = probs
    return BundleReport(folder, ref, ref_accuracy, confusion_matrix(y_test, ref_labels, classes), results,
                        _cross_runtime(results, probs_of))


def _verify_one(target: Target, ref_probs: np.ndarray, ref_accuracy: float, x_test: np.ndarray, y_test: np.ndarray,
                gate: dict[str, float | None], bar) -> tuple[ExportResult, np.ndarray | None]:
    precision = target.entry["precision"] if target.entry else None
    result = ExportResult(target.key, target.path, precision, None, None, [])
    if not target.path.is_file():
        result.failures.append(f"{target.path} is listed in the manifest but missing")
        bar.update(len(y_test), target.key)
        return result, None
    result.bytes = target.path.stat().st_size
    digest = sha256_file(target.path) if target.entry else None
    if target.entry and digest != target.entry["sha256"]:
        result.failures.append(f"tampered: sha256 of {target.path.name} is {digest[:12]}…, "
                               f"its manifest entry says {target.entry['sha256'][:12]}…")
        bar.update(len(y_test), target.key)
        return result, None
    started = time.perf_counter()
    try:
        probs, predictor = _predict(target.path, x_test, bar, target.key)
    except Exception as exc:  # runtimes raise their own types on a broken file: it fails, the others still run
        detail = first_line(exc) if isinstance(exc, EdgecnnError) else f"{type(exc).__name__}: {first_line(exc)}"
        result.failures.append(f"cannot run {target.path.name}: {detail}")
        return result, None
    result.seconds = time.perf_counter() - started
    result.precision = result.precision or predictor.precision
    result.backend = predictor.backend
    try:
        result.thresholds = thresholds_for(result.precision, **gate)
    except EdgecnnError as exc:
        result.failures.append(str(exc))
    if probs.shape != ref_probs.shape:
        result.failures.append(f"outputs {probs.shape[1]} classes, the reference {ref_probs.shape[1]}")
        return result, None
    labels = top1(probs)
    result.accuracy = accuracy(labels, y_test)
    result.accuracy_delta_points = 100 * (result.accuracy - ref_accuracy)
    result.comparison = compare_probs(ref_probs, probs)
    result.matrix = confusion_matrix(y_test, labels, ref_probs.shape[1])
    result.disagreements = _disagreements(result.comparison.flipped_indices, ref_probs, probs)
    if not np.isfinite(probs).all():
        result.failures.append("outputs contain NaN or infinity")
    if result.thresholds is not None:
        result.failures += result.thresholds.check(
            max_abs_diff=result.comparison.max_abs_diff, agreement=result.comparison.agreement,
            accuracy_delta_points=result.accuracy_delta_points)
    return result, probs


def _predict(path: Path, x: np.ndarray, bar, label: str):
    """Run ``path`` on all of ``x`` in large batches through the Predictor."""
    from .runtime import Predictor

    predictor = Predictor.load(path)
    chunks = []
    for start in range(0, len(x), BATCH):
        chunks.append(np.asarray(predictor.predict(x[start:start + BATCH]), dtype=np.float32))
        bar.update(len(chunks[-1]), label)
    return np.concatenate(chunks), predictor


def _disagreements(flipped: np.ndarray, ref_probs: np.ndarray, probs: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for i in flipped[:MAX_DISAGREEMENTS]:
        r, e = int(ref_probs[i].argmax()), int(probs[i].argmax())
        rows.append({"index": int(i), "reference_label": r, "reference_prob": float(ref_probs[i, r]),
                     "export_label": e, "export_prob": float(probs[i, e])})
    return rows


def _cross_runtime(results: list[ExportResult], probs_of: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Float32 files of different runtimes compared with each other (ONNX vs TFLite)."""
    fp32 = [r for r in results if r.key in probs_of and gate_name(r.precision) == "float32"]
    pairs = []
    for i, a in enumerate(fp32):
        for b in fp32[i + 1:]:
            if a.backend != b.backend:
                c = compare_probs(probs_of[a.key], probs_of[b.key])
                pairs.append({"a": a.key, "b": b.key, "agreement": c.agreement, "flipped": c.flipped,
                              "max_abs_diff": _finite(c.max_abs_diff)})
    return pairs


def _reference_notes(ref: Reference, manifest: dict[str, Any] | None) -> list[str]:
    """Warn when the bundle's Keras model is not the one the manifest says was exported."""
    model = (manifest or {}).get("model") or {}
    if ref.kind != "keras" or not model.get("sha256") or ref.path.name != Path(model.get("file", "")).name:
        return []
    if sha256_file(ref.path) != model["sha256"]:
        return [f"{ref.path} changed since it was exported (sha256 differs from the manifest): re-export it"]
    return []


# --------------------------------------------------------------------------- storing


def _store(bundle: BundleReport, listed: set[str], report: VerifyReport) -> None:
    """Write DIR/verify.json (merged with earlier results of ``listed`` exports not verified now) and the manifest."""
    created = report.created
    path = bundle.folder / VERIFY_FILE
    record = bundle.to_dict()
    try:
        earlier = read_json(path, what="verify results") if path.is_file() else {}
    except EdgecnnError:
        earlier = {}
    earlier = earlier if isinstance(earlier, dict) else {}
    kept = {k: v for k, v in (earlier.get("exports") or {}).items() if k in listed and k not in record["exports"]}
    record["exports"] = {**kept, **record["exports"]}
    record["cross_runtime"] += [pair for pair in earlier.get("cross_runtime") or []
                                if pair.get("a") in kept and pair.get("b") in kept]
    record["passed"] = all(e.get("passed") for e in record["exports"].values())
    record.update(created=created, machine=machine())

    def change(manifest: dict[str, Any]) -> None:
        for result in bundle.exports:
            if result.key in manifest.get("exports", {}):
                manifest["exports"][result.key]["verify"] = result.manifest_record(created)

    try:
        write_json(path, record)
        update_manifest(bundle.folder, change)
    except (EdgecnnError, OSError) as exc:
        report.notes.append(f"results not stored in {bundle.folder} ({exc}); use --json FILE to keep them")
        return
    report.stored.append(path)


# --------------------------------------------------------------------------- output


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.2e}"


def format_report(report: VerifyReport) -> str:
    """The table of every export, its failures, the cross-runtime lines and one final line."""
    lines = []
    head = (f"{'export':<16} {'precision':<9} {'size':>9} {'accuracy':>9} {'Δ (pts)':>8} {'agreement':>9} "
            f"{'flipped':>7} {'max diff':>9}  result")
    for bundle in report.bundles:
        ref = bundle.reference
        lines.append(f"reference: {ref.why}; accuracy {_pct(bundle.reference_accuracy)} "
                     f"on {int(bundle.reference_matrix.sum()):,} test images")
        lines += [head, "-" * len(head)]
        for r in bundle.exports:
            c = r.comparison
            delta = "-" if r.accuracy_delta_points is None else f"{r.accuracy_delta_points:+.2f}"
            lines.append(f"{r.key:<16} {r.precision or '-':<9} {format_bytes(r.bytes):>9} {_pct(r.accuracy):>9} {delta:>8} "
                         f"{_pct(c.agreement if c else None):>9} {c.flipped if c else '-':>7} "
                         f"{_sci(c.max_abs_diff if c else None):>9}  {'PASS' if r.passed else 'FAIL'}")
        lines += [f"  {r.key}: {'; '.join(r.failures)}" for r in bundle.exports if r.failures]
        lines += [f"cross-runtime {p['a']} vs {p['b']}: agreement {_pct(p['agreement'])}, max diff {_sci(p['max_abs_diff'])}"
                  for p in bundle.cross_runtime]
        lines += [f"note: {n}" for n in bundle.notes]
    lines += [f"note: {n}" for n in report.notes]
    rows = report.rows
    failed = [r.key for r in rows if not r.passed]
    where = f"; results in {', '.join(map(str, report.stored))}" if report.stored else ""
    if failed:
        lines.append(f"FAIL: {len(failed)} of {len(rows)} exports failed ({', '.join(failed)}) "
                     f"in {report.seconds:.1f} s{where}")
    else:
        lines.append(f"PASS: all {len(rows)} exports match the reference in {report.seconds:.1f} s{where}")
    return "\n".join(lines)
