"""What to benchmark: bundle folders and model files -> targets with their facts, and the input images."""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..bundle.cpu import cpu_notes
from ..bundle.files import MANIFEST_FILE, METRICS_FILE, MODEL_FILE, VERIFY_FILE, default_bundle
from ..bundle.schema import VERIFY_WHAT, VerifyFile, read_checked
from ..bundle.targets import manifest_of, resolve_targets
from ..datasets.bundled import test_set_of
from ..datasets.fashion_mnist import INPUT_SHAPE
from ..errors import DataError, EdgecnnError
from ..fileio import read_json
from ..runtime import backend_class
from .facts import ModelFacts, file_facts
from .worker import EXPORT_MODES, KERAS_MODES

INPUT_SEED = 0


@dataclass
class BenchTarget:
    """One model file to benchmark, with what is known of it before it runs."""

    name: str  # the manifest's format key, "keras" for the Keras model, else the file name
    path: Path
    modes: tuple[str, ...]
    precision: str | None = None
    accuracy: float | None = None
    facts: ModelFacts | None = None
    input_shape: tuple[int, ...] = INPUT_SHAPE
    #: The bundle's input range, which the Keras rows feed their model (None: what the model's own layers say).
    input_range: str | None = None


def tensorflow_installed() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def find_targets(targets: Iterable[str | os.PathLike] | None, *, include_keras: bool = True) -> tuple[list[BenchTarget], list[str]]:
    """Bundle folders (every export, plus the Keras model) and model files -> targets, and notes."""
    notes: list[str] = []
    found: list[BenchTarget] = []
    for raw in list(targets or []) or [default_bundle()]:
        path = Path(raw)
        folder = path if path.is_dir() else path.parent
        if path.is_dir() and not (path / MANIFEST_FILE).is_file():
            raise EdgecnnError(f"{path} has no {MANIFEST_FILE}: nothing to benchmark (run `edgecnn export` first, "
                               "or name model files)")
        manifest = manifest_of(folder, required=False)
        model = manifest.model if manifest else None
        shape = tuple(model.input_shape) if model else INPUT_SHAPE
        if path.suffix == ".keras":
            keras_file = path
            if not keras_file.is_file():
                raise EdgecnnError(f"model file {keras_file} not found")
        else:
            found += _export_targets(path, shape, known={t.path.resolve() for t in found}, notes=notes,
                                     model_file=model.file if model else None)
            keras_file = folder / (model.file if model else MODEL_FILE)
            if not (path.is_dir() and include_keras and keras_file.is_file()):
                continue
        if any(t.path.resolve() == keras_file.resolve() for t in found):
            continue
        if not tensorflow_installed():
            notes.append(f"TensorFlow is not installed: no Keras rows for {keras_file} "
                         "(install edgecnn[train] to compare with Keras)")
            continue
        recorded = (manifest.preprocessing or {}).get("input_range") if manifest else None
        found.append(BenchTarget("keras", keras_file, KERAS_MODES, "float32", _keras_accuracy(keras_file.parent),
                                 input_shape=shape, input_range=recorded))
    if not found:
        raise EdgecnnError("nothing to benchmark" + (f": {notes[0]}" if notes else ""))
    _unique_names(found)
    if any(t.path.suffix == ".onnx" for t in found) and importlib.util.find_spec("onnx") is None:
        notes.append("the onnx package is not installed: no parameter and MAC counts for ONNX files")
    return found, notes


def _export_targets(path: Path, shape: tuple[int, ...], known: set[Path], notes: list[str],
                    model_file: str | None) -> list[BenchTarget]:
    """The exports of a bundle folder (or one export file), named by the manifest, with their facts; ``notes``
    gets a line for each int8 file timed or verified on another class of CPU."""
    found = []
    for t in (t for group in resolve_targets([path]).values() for t in group):
        if t.path.resolve() in known:
            continue
        backend_class(t.path)  # an unknown extension is a one-line error now, not in a worker
        verified = t.entry.verify if t.entry else None
        if t.entry is not None:
            notes += cpu_notes(t.entry, t.path.parent, model_file)
        found.append(BenchTarget(t.key, t.path, EXPORT_MODES, t.entry.precision if t.entry else None,
                                 verified.accuracy if verified else None, file_facts(t.path), shape))
        known.add(t.path.resolve())
    return found


def _keras_accuracy(folder: Path) -> float | None:
    """The Keras model's test accuracy: from verify.json, else from training's metrics.json (None if neither says)."""
    try:
        if (folder / VERIFY_FILE).is_file():
            return read_checked(VerifyFile, folder / VERIFY_FILE, VERIFY_WHAT).reference.accuracy
        metrics = read_json(folder / METRICS_FILE) if (folder / METRICS_FILE).is_file() else {}
    except EdgecnnError:  # an unreadable result file leaves the figure out of the table; verify/report name it
        return None
    value = metrics.get("test_accuracy") if isinstance(metrics, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def _unique_names(found: list[BenchTarget]) -> None:
    """Same key in two bundles (two "tflite" files): prefix the folder name."""
    counts: dict[str, int] = {}
    for t in found:
        counts[t.name] = counts.get(t.name, 0) + 1
    seen: set[str] = set()
    for t in found:
        if counts[t.name] > 1:
            t.name = f"{t.path.parent.name}/{t.name}"
        if t.name in seen:
            t.name = str(t.path)
        seen.add(t.name)


def bench_images(n: int, shape: tuple[int, ...], folder: str | os.PathLike,
                 data: str | os.PathLike | None = None) -> tuple[np.ndarray, str]:
    """``n`` images of ``shape`` for every runtime: the bundle's own test images when found, else seeded random."""
    folder = Path(folder)
    try:
        test = test_set_of(folder, manifest_of(folder, required=False), data)
        x_test = test.x if test.x.shape[1:] in (tuple(shape), tuple(shape[:-1])) and len(test.x) else None
        why = f"its test images have shape {test.x.shape[1:]}"
    except DataError as exc:
        x_test, why = None, str(exc)
    if x_test is not None:
        return x_test[np.arange(n) % len(x_test)], f"{test.source} (first {min(n, len(x_test))})"
    images = np.random.default_rng(INPUT_SEED).integers(0, 256, (n, *shape), dtype=np.uint8)
    return images, f"random uint8 images {tuple(shape)} (seed {INPUT_SEED}; no test images: {why})"
