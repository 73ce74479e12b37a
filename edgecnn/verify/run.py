"""Prove each export is the trained model: every test image, compared with the reference, gated.

An export passes when it meets the gate of its precision (:data:`~.gates.GATES`);
a file whose sha256 differs from its manifest entry fails as tampered without
being run. A file that cannot be loaded fails with the runtime's one-line reason;
any other exception is a bug and propagates.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import click
import numpy as np

from ..bundle.cpu import passed_on
from ..bundle.files import VERIFY_FILE
from ..bundle.manifest import update_manifest
from ..bundle.schema import VERIFY_WHAT, Manifest, VerifyFile, parse
from ..bundle.targets import Target, manifest_of, resolve_targets
from ..datasets.bundled import test_set_of
from ..errors import EdgecnnError, first_line
from ..fileio import ensure_writable_file, read_json, sha256_file, write_json
from ..metrics import accuracy, compare_probs, confusion_matrix, top1
from ..versions import machine, utc_now
from .arm import ArmJob, check_arch, prepare, sample, verify_on_arm
from .compat import check_compatibility
from .gates import check_overrides, gate_name, thresholds_for
from .reference import Reference, find_reference, load_saved_probs
from .results import BundleReport, ExportResult, VerifyReport, finite

BATCH = 1000  # images per runtime call: large batches keep the 10,000-image pass fast
MAX_DISAGREEMENTS = 100  # flipped images listed in detail in verify.json


def verify(targets: Iterable[str | os.PathLike] | None = None, *, reference: str | os.PathLike | None = None,
           atol: float | None = None, min_agreement: float | None = None, max_accuracy_drop: float | None = None,
           data: str | os.PathLike | None = None, json_path: str | os.PathLike | None = None,
           progress: bool = True, arch: str | None = None, cpus: Sequence[str] | None = None,
           images: int | None = None, say: Callable[[str], None] = lambda line: None) -> VerifyReport:
    """Verify exports (bundle folders or model files; default: the default bundle) on the whole test set.

    Each bundle's own test set: ``data`` when given, else the data recorded at
    export (or the bundle's copy of its test split); see :func:`bundle_test_set`.

    ``arch="arm64"`` also runs each export under the emulated ARM ``cpus`` (see
    :mod:`.arm`), on ``images`` test images spread over the set (default: all);
    ``say`` hears the one-time build of the ARM environment.

    Results go to each folder's verify.json and manifest (a read-only folder gets a
    note instead) and, with ``json_path``, to one JSON file. Bad input raises
    :class:`EdgecnnError`; a failed gate does not raise: see ``report.passed``.
    """
    check_overrides(atol, min_agreement, max_accuracy_drop)
    cpus = check_arch(arch, cpus) if arch is not None else []
    if json_path is not None:
        ensure_writable_file(json_path, "--json")
    started = time.perf_counter()
    groups = resolve_targets(targets)
    explicit = Path(reference) if reference is not None else None
    manifests = {folder: manifest_of(folder, required=False) for folder in groups}
    refs = {folder: find_reference(folder, manifests[folder], explicit) for folder in groups}
    tests = {folder: test_set_of(folder, manifests[folder], data) for folder in groups}
    gate = {"atol": atol, "min_agreement": min_agreement, "max_accuracy_drop": max_accuracy_drop}
    picks = {folder: sample(len(tests[folder].y), images) for folder in groups}
    envs = prepare([t.entry.versions if t.entry else None for targets_ in groups.values() for t in targets_], say) \
        if cpus else {}

    total = sum(len(tests[f].y) * (len(t) + (refs[f].kind == "keras")) + len(picks[f]) * len(t) * len(cpus)
                for f, t in groups.items())
    bundles = []
    with click.progressbar(length=total, label="verifying", file=sys.stderr, hidden=not progress,
                           item_show_func=lambda item: item) as bar:
        for folder, folder_targets in groups.items():
            ref, test = refs[folder], tests[folder]
            ref.probs = (_predict(ref.path, test.x, bar, "reference", described_by=manifests[folder])[0]
                         if ref.kind == "keras" else load_saved_probs(ref, test.y))
            bundle, probs_of = _verify_bundle(folder, ref, folder_targets, test.x, test.y, gate, bar)
            if cpus:
                bundle.arm = _verify_arm(bundle, folder_targets, probs_of, cpus, envs, test, picks[folder], ref,
                                         gate, bar)
            bundle.notes += _reference_notes(ref, manifests[folder])
            bundle.test_source = test.source
            bundle.class_names = manifests[folder].class_names if manifests[folder] else None
            bundles.append(bundle)
    created = utc_now()
    report = VerifyReport(bundles, created, time.perf_counter() - started)
    for bundle in bundles:
        if manifests[bundle.folder] is not None:
            _store(bundle, set(manifests[bundle.folder].exports), report)
    if json_path is not None:
        write_json(json_path, report.to_dict())
    return report


def _verify_bundle(folder: Path, ref: Reference, targets: list[Target], x_test: np.ndarray, y_test: np.ndarray,
                   gate: dict[str, float | None], bar) -> tuple[BundleReport, dict[str, np.ndarray]]:
    """The x86 results of one folder, and each run export's probabilities (the ARM runs are compared with them)."""
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
                        _cross_runtime(results, probs_of)), probs_of


def _verify_arm(bundle: BundleReport, targets: list[Target], probs_of: dict[str, np.ndarray], cpus: list[str],
                envs: dict, test, picks: np.ndarray, ref: Reference, gate: dict[str, float | None], bar) -> list:
    """The folder's exports on each ARM core; one that failed to run here is not run there (a note says so)."""
    precision = {r.key: r.precision for r in bundle.exports}
    jobs = [ArmJob(t.key, t.path, precision[t.key], probs_of[t.key][picks], t.entry.versions if t.entry else None)
            for t in targets if t.key in probs_of]
    skipped = [t.key for t in targets if t.key not in probs_of]
    if skipped:
        bundle.notes.append(f"not run on ARM, as they did not run here: {', '.join(skipped)}")
        bar.update(len(picks) * len(skipped) * len(cpus))
    return verify_on_arm(jobs, cpus, envs, test.x[picks], test.y[picks], ref.probs[picks], gate,
                         full=len(picks) == len(test.y), on_images=bar.update)


def _verify_one(target: Target, ref_probs: np.ndarray, ref_accuracy: float, x_test: np.ndarray, y_test: np.ndarray,
                gate: dict[str, float | None], bar) -> tuple[ExportResult, np.ndarray | None]:
    precision = target.entry.precision if target.entry else None
    result = ExportResult(target.key, target.path, precision, None, None, [])
    if not target.path.is_file():
        result.failures.append(f"{target.path} is listed in the manifest but missing")
        bar.update(len(y_test), target.key)
        return result, None
    result.bytes = target.path.stat().st_size
    digest = sha256_file(target.path) if target.entry else None
    if target.entry and digest != target.entry.sha256:
        result.failures.append(f"tampered: sha256 of {target.path.name} is {digest[:12]}…, "
                               f"its manifest entry says {target.entry.sha256[:12]}…")
        bar.update(len(y_test), target.key)
        return result, None
    result.compatibility = check_compatibility(target.path)
    if result.compatibility is not None:
        result.failures += result.compatibility.failures
    started = time.perf_counter()
    try:
        probs, predictor = _predict(target.path, x_test, bar, target.key)
    except EdgecnnError as exc:  # the backends turn a broken file into a ModelFileError: it fails, the others run
        result.failures.append(f"cannot run {target.path.name}: {first_line(exc)}")
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
            max_abs_diff=result.comparison.max_abs_diff, agreement=result.comparison.confident_agreement,
            accuracy_delta_points=result.accuracy_delta_points)
    return result, probs


def _predict(path: Path, x: np.ndarray, bar, label: str, described_by: Manifest | None = None):
    """Run ``path`` on all of ``x`` in large batches through the Predictor.

    ``described_by``: the bundle's manifest, whose class names and preprocessing
    the Keras reference follows wherever its file lives (it carries no card).
    """
    from ..runtime import Predictor

    described = {"class_names": described_by.class_names, "preprocessing": described_by.preprocessing} \
        if described_by is not None and described_by.preprocessing is not None else {}
    predictor = Predictor.load(path, **described)
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
                              "max_abs_diff": finite(c.max_abs_diff)})
    return pairs


def _reference_notes(ref: Reference, manifest: Manifest | None) -> list[str]:
    """Warn when the bundle's Keras model is not the one the manifest says was exported."""
    model = manifest.model if manifest else None
    if ref.kind != "keras" or model is None or ref.path.name != Path(model.file).name:
        return []
    if sha256_file(ref.path) != model.sha256:
        return [f"{ref.path} changed since it was exported (sha256 differs from the manifest): re-export it"]
    return []


# --------------------------------------------------------------------------- storing


def _store(bundle: BundleReport, listed: set[str], report: VerifyReport) -> None:
    """Write DIR/verify.json (merged with earlier results of ``listed`` exports not verified now) and the manifest."""
    created = report.created
    path = bundle.folder / VERIFY_FILE
    record = bundle.to_dict()
    try:
        earlier = read_json(path, what=VERIFY_WHAT) if path.is_file() else {"exports": {}}
        if path.is_file():
            parse(VerifyFile, earlier, path, VERIFY_WHAT)
    except EdgecnnError:  # unreadable, or of another schema: this run's results replace it
        earlier = {"exports": {}}
    kept = {k: v for k, v in earlier["exports"].items() if k in listed and k not in record["exports"]}
    record["exports"] = {**kept, **record["exports"]}
    record["cross_runtime"] += [pair for pair in earlier.get("cross_runtime", [])
                                if pair["a"] in kept and pair["b"] in kept]
    ran = {(row["export"], row["cpu"]) for row in record["arm64"]}
    record["arm64"] = [row for row in earlier.get("arm64", [])
                       if row["export"] in listed and (row["export"], row["cpu"]) not in ran] + record["arm64"]
    record["passed"] = all(e["passed"] for e in [*record["exports"].values(), *record["arm64"]])
    record.update(created=created, machine=machine())

    def change(manifest: dict[str, Any]) -> None:
        for result in bundle.exports:
            if result.key in manifest.get("exports", {}):
                entry = manifest["exports"][result.key]
                stamp = result.manifest_record(created)
                earlier = (entry.get("verify") or {}).get("passed_on") or []
                stamp["passed_on"] = passed_on(earlier, stamp["verified_on"], result.passed)
                for row in bundle.arm:  # an ARM class counts when its core passed on the whole test set
                    if row.key == result.key and row.full_test_set:
                        stamp["passed_on"] = passed_on(stamp["passed_on"], row.cpu_class, row.passed)
                entry["verify"] = stamp

    try:
        write_json(path, record)
        update_manifest(bundle.folder, change)
    except (EdgecnnError, OSError) as exc:
        report.notes.append(f"results not stored in {bundle.folder} ({exc}); use --json FILE to keep them")
        return
    report.stored.append(path)
