"""Export a Keras image classifier to TFLite and ONNX, each file described in manifest.json.

Every format is one function behind the :data:`FORMATS` registry: it writes one
file and returns that file's own manifest fields (tensors, opset, quantization).
:func:`export_model` loads the model once, writes each file atomically and records
it in the manifest right after, so a run that fails or is killed midway leaves
every finished file consistent with its entry and no half-written file.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .. import tfquiet
from ..bundle.files import MANIFEST_FILE, METRICS_FILE, MODEL_FILE, REFERENCE_LABELS_FILE, REFERENCE_PROBS_FILE, default_bundle
from ..bundle.manifest import update_manifest
from ..datasets.bundled import data_section, load_for_model
from ..runtime.base import softmax
from ..errors import EXIT_FAILED, DataError, EdgecnnError, first_line
from ..fileio import atomic_path, ensure_writable_dir, format_bytes, read_json, sha256_file, write_npy
from ..model_card import model_card
from . import onnx as onnx_export
from . import ort
from . import tflite
from ..quantize.mixed import DEFAULT_MAX_ACCURACY_DROP
from .entry import export_entry, set_model, stale_exports
from .preprocessing import decide_preprocessing
from ..convert.source import ExportSource
from ..progress import Progress


@dataclass(frozen=True)
class ExportFormat:
    """One deployable file: its name on the command line, file name, runtime and precision."""

    name: str
    file: str
    runtime: str  # "litert" | "onnxruntime"
    precision: str  # "float32" | "float16" | "dynamic" | "int8" | "int16x8"
    #: ``func(source, path, card)`` writes the file with ``card`` (see :mod:`edgecnn.model_card`) inside it and
    #: returns its manifest fields.
    func: Callable[[ExportSource, Path, dict], dict]
    #: Formats whose graph this one converts in the same run: when one of them fails, this one is not attempted.
    made_from: tuple[str, ...] = ()


#: In dependency order: ``onnx-int8`` quantizes the graph ``onnx`` built in the same run, and the
#: ``onnx-ort`` formats convert those two graphs.
FORMATS: dict[str, ExportFormat] = {fmt.name: fmt for fmt in (
    ExportFormat("tflite", "model_fp32.tflite", "litert", "float32", tflite.export_float32),
    ExportFormat("tflite-fp16", "model_fp16.tflite", "litert", "float16", tflite.export_float16),
    ExportFormat("tflite-dynamic", "model_dynamic.tflite", "litert", "dynamic", tflite.export_dynamic),
    ExportFormat("tflite-int8", "model_int8.tflite", "litert", "int8", tflite.export_int8),
    ExportFormat("tflite-int16x8", "model_int16x8.tflite", "litert", "int16x8", tflite.export_int16x8),
    ExportFormat("onnx", "model_fp32.onnx", "onnxruntime", "float32", onnx_export.export_float32),
    ExportFormat("onnx-int8", "model_int8.onnx", "onnxruntime", "int8", onnx_export.export_int8, ("onnx",)),
    ExportFormat("onnx-ort", "model_fp32.ort", "onnxruntime", "float32", ort.export_float32, ("onnx",)),
    ExportFormat("onnx-ort-int8", "model_int8.ort", "onnxruntime", "int8", ort.export_int8, ("onnx-int8",)),
)}
ALL = "all"
#: tf2onnx 1.17 converts to opsets up to 18; per-channel int8 needs 13 or later.
MIN_OPSET, MAX_OPSET = 13, 18


@dataclass
class ExportEntry:
    format: str
    file: Path
    bytes: int
    seconds: float
    sha256: str


@dataclass
class ExportResult:
    entries: list[ExportEntry]
    manifest_path: Path
    reference: Path | None = None
    notes: list[str] = field(default_factory=list)
    #: One line per int8 export whose accuracy budget no layer mix met (the command then exits 1).
    missed_budgets: list[str] = field(default_factory=list)
    #: Format name -> the one line saying why it could not be written (the others were; the command exits 1).
    failed: dict[str, str] = field(default_factory=dict)

    def table(self) -> str:
        """One row per written file: format, file, size and seconds it took."""
        head = f"{'format':<15} {'file':<22} {'size':>10} {'seconds':>8}"
        rows = [f"{e.format:<15} {e.file.name:<22} {format_bytes(e.bytes):>10} {e.seconds:>8.1f}" for e in self.entries]
        return "\n".join([head, "-" * len(head), *rows])


def resolve_formats(formats: Iterable[str]) -> list[ExportFormat]:
    """Registry entries for the requested names (``all`` means every one), in registry order."""
    names = set(formats) or {ALL}
    unknown = sorted(names - set(FORMATS) - {ALL})
    if unknown:
        raise EdgecnnError(f"unknown export format {', '.join(unknown)} (choose from {', '.join(FORMATS)}, {ALL})")
    return [fmt for name, fmt in FORMATS.items() if ALL in names or name in names]


def export_model(model_path: str | os.PathLike | None = None, formats: Iterable[str] = (ALL,),
                 out: str | os.PathLike | None = None, *, data: str | os.PathLike | None = None,
                 calibration_samples: int = 500, opset: int = 17, unsafe: bool = False, batch: int | None = None,
                 input_range: str | None = None, resize: str | None = None,
                 max_accuracy_drop: float | None = DEFAULT_MAX_ACCURACY_DROP, measure_latency: bool = True,
                 on_progress: Callable[[str, str], None] | None = None,
                 on_layer_progress: Progress | None = None) -> ExportResult:
    """Write the requested exports of a ``.keras`` model to ``out`` (default: the model's folder).

    ``data`` holds the labelled images (class folders, a .npz or the Fashion-MNIST
    IDX folder; default: the data the model was trained on, else Fashion-MNIST
    when the model fits it): calibration from its training split, the Keras
    probabilities on its test split (``reference_probs.npy``,
    ``reference_labels.npy``) so exports can be verified without TensorFlow.
    ``input_range``/``resize`` set the preprocessing the model cannot tell
    (see :mod:`edgecnn.export.preprocessing`).
    ``batch=1`` writes a static batch-1 signature (LiteRT.js, microcontrollers, NPUs that cannot resize);
    the default is a dynamic batch. ``on_progress(name, stage)`` is called with stage ``"start"``/``"done"`` for
    ``"reference"`` and for each format (``"failed"`` instead of ``"done"`` for a format that could not be written);
    ``on_layer_progress`` hears each layer mixed precision measures for the int8 formats (minutes on a real network).
    A format that cannot represent the model costs no other: the rest are written, and its one-line reason is
    in ``failed`` (as is each format that depends on it, e.g. ``onnx-int8`` on ``onnx``). ``max_accuracy_drop`` (points of
    validation accuracy) makes int8 exports keep the layers float that it takes
    (see :mod:`edgecnn.quantize`); None quantizes every layer. A budget that
    no mix meets still writes the best mix and lists it in ``missed_budgets``. ``measure_latency=False``
    chooses by accuracy alone (no layer kept float for speed), the same choice on any machine.
    """
    chosen = resolve_formats(formats)
    if calibration_samples < 1:
        raise EdgecnnError(f"--calibration-samples must be at least 1, got {calibration_samples}")
    if batch not in (None, 1):
        raise EdgecnnError(f"--batch must be 1 (a static batch-1 signature) or left out (a dynamic batch), got {batch}")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise EdgecnnError(f"--opset must be between {MIN_OPSET} and {MAX_OPSET}, got {opset}")
    if max_accuracy_drop is not None and not max_accuracy_drop >= 0:
        raise EdgecnnError(f"--max-accuracy-drop must be 0 or more points, got {max_accuracy_drop}")
    progress = on_progress or (lambda name, stage: None)
    model_path = Path(model_path) if model_path is not None else default_bundle() / MODEL_FILE
    source, notes = load_source(model_path, data, calibrated=any(fmt.precision in ("int8", "int16x8") for fmt in chosen),
                                calibration_samples=calibration_samples, opset=opset, batch=batch,
                                input_range=input_range, resize=resize, max_accuracy_drop=max_accuracy_drop,
                                measure_latency=measure_latency, on_progress=on_layer_progress, unsafe=unsafe)
    dataset = source.data
    folder = ensure_writable_dir(out if out is not None else model_path.parent)

    reference = None
    if dataset is not None and dataset.x_test is not None:
        progress("reference", "start")
        reference = write_reference(source, folder)
        progress("reference", "done")
    elif dataset is not None:
        notes.append(f"{dataset.source} has no test images: reference probabilities not saved "
                     "(a .npz needs 'x_test' and 'y_test')")
    recorded = data_section(dataset, folder) if dataset is not None else None
    manifest = update_manifest(folder, lambda m: set_model(m, source, folder, reference, recorded))

    entries: list[ExportEntry] = []
    missed: list[str] = []
    failed: dict[str, str] = {}
    for fmt in chosen:
        progress(fmt.name, "start")
        blocked = next((name for name in fmt.made_from if name in failed), None)
        try:
            if blocked is not None:
                raise EdgecnnError(f"{fmt.name} export of {source.model_path} not attempted: it is made from "
                                   f"{blocked}, which failed", exit_code=EXIT_FAILED)
            entry = _export_one(fmt, source, folder)
        except EdgecnnError as exc:
            if exc.exit_code != EXIT_FAILED:
                raise  # bad input, not this format's limit: nothing else would fare better
            failed[fmt.name] = first_line(exc)
            progress(fmt.name, "failed")
            continue

        def record(m: dict, name: str = fmt.name, entry: dict = entry) -> None:
            m["exports"][name] = entry

        manifest = update_manifest(folder, record)
        entries.append(ExportEntry(fmt.name, folder / fmt.file, entry["bytes"], entry["seconds"], entry["sha256"]))
        if entry.get("note"):
            notes.append(f"{fmt.name}: {entry['note']}")
        mixed = entry.get("mixed_precision")
        if mixed is not None and not mixed["met"]:
            missed.append(f"{fmt.name}: {'; '.join(mixed['misses'])} with every layer that helps kept float "
                          "(best mix written)")
        progress(fmt.name, "done")

    if any(e.file.suffix == ".ort" for e in entries):
        manifest = update_manifest(folder, lambda m: ort.record_operators_config(folder, m))
    stale = stale_exports(manifest, source)
    if stale:
        notes.append(f"manifest keeps exports made from another model file: {', '.join(stale)} "
                     "(re-export them, e.g. --format all)")
    return ExportResult(entries, folder / MANIFEST_FILE, folder / REFERENCE_PROBS_FILE if reference else None, notes,
                        missed, failed)


def load_source(model_path: Path, data: str | os.PathLike | None, *, calibrated: bool, unsafe: bool = False,
                input_range: str | None = None, resize: str | None = None, **options) -> tuple[ExportSource, list[str]]:
    """The model, its data and its preprocessing, loaded and checked before any file is written; and notes.

    ``calibrated``: the formats need calibration images, so missing data is an
    error rather than a note. ``options`` are :class:`ExportSource` fields.
    """
    from ..model import load_model, model_io

    model = load_model(model_path, unsafe=unsafe)
    input_shape, classes = model_io(model, model_path)
    notes: list[str] = []
    if data is None:
        data = trained_on(model_path, notes)
    try:
        dataset = load_for_model(data, input_shape, classes, resize=resize or "center-crop", progress=True)
    except DataError as exc:
        if calibrated or data is not None:
            raise
        dataset = None
        notes.append(f"reference probabilities not saved: {exc}")
    preprocessing = decide_preprocessing(model, input_shape, dataset, input_range=input_range, resize=resize,
                                         notes=notes)
    source = ExportSource(model, model_path, sha256_file(model_path), input_shape, classes, dataset, preprocessing,
                          **options)
    if calibrated:
        source.calibration()  # fail now, before any file is written, if there are no calibration images
    return source, notes


def trained_on(model_path: Path, notes: list[str]) -> str | None:
    """The data ``edgecnn train`` recorded beside the model (its metrics.json), while it is still there."""
    metrics = model_path.parent / METRICS_FILE
    try:
        recorded = read_json(metrics, what="metrics").get("data") if metrics.is_file() else None
    except (EdgecnnError, AttributeError):  # unreadable metrics: nothing recorded, the default data applies
        return None
    path = recorded.get("path") if isinstance(recorded, dict) else None
    if not isinstance(path, str) or not Path(path).exists():
        return None
    notes.append(f"data: {path}, as recorded when {model_path.name} was trained (--data to change)")
    return path


def _export_one(fmt: ExportFormat, source: ExportSource, folder: Path) -> dict:
    """Write one format atomically, its model card inside, and return its manifest entry (hashed after the card
    is in); a converter crash becomes one line (exit code ``EXIT_FAILED``: the format cannot represent the model)."""
    started = time.perf_counter()
    card = model_card(source.class_names, source.preprocessing, export_format=fmt.name, precision=fmt.precision)
    try:
        with atomic_path(folder / fmt.file) as tmp:
            details = fmt.func(source, tmp, card)
            _check_runs(tmp)
            return export_entry(fmt, tmp, source, details, time.perf_counter() - started)
    except EdgecnnError:
        raise
    except Exception as exc:  # converters raise anything; the user gets the first line, --debug the rest
        raise EdgecnnError(f"{fmt.name} export of {source.model_path} failed: {type(exc).__name__}: "
                           f"{first_line(exc)}", exit_code=EXIT_FAILED) from exc


def _check_runs(path: Path) -> None:
    """Run the written file once on a blank image in its own runtime: a converter may write ops that runtime
    cannot run (int16 SQUARED_DIFFERENCE from a LayerNormalization in int16x8), and such a file must fail its
    export here, not on the device."""
    from ..runtime import backend_class

    try:
        runtime = backend_class(path)(path)
        runtime.run_native(np.zeros((1, *runtime.input_shape), dtype=runtime.input_dtype))
    except Exception as exc:  # runtimes raise RuntimeError, ValueError or their own types
        raise RuntimeError(f"the written file does not run in {backend_class(path).name}: {first_line(exc)}") from exc


def write_reference(source: ExportSource, folder: Path) -> dict:
    """Keras probabilities (float32) and labels on the test images, and their manifest section.

    A logits model's outputs go through the same softmax the predictor applies,
    so the saved reference compares with every runtime as it is.
    """
    data = source.data
    with tfquiet.quiet():
        out = np.asarray(source.model.predict(source.model_input(data.x_test), batch_size=500, verbose=0),
                         dtype=np.float32)
    probs = softmax(out) if source.preprocessing["output"] == "logits" else out
    labels = np.asarray(data.y_test, dtype=np.uint8 if len(source.class_names) <= 256 else np.int64)
    probs_path = write_npy(folder / REFERENCE_PROBS_FILE, probs)
    labels_path = write_npy(folder / REFERENCE_LABELS_FILE, labels)
    return {"probs_file": REFERENCE_PROBS_FILE, "labels_file": REFERENCE_LABELS_FILE, "images": int(len(labels)),
            "keras_accuracy": float(np.mean(probs.argmax(axis=1) == labels)), "model_sha256": source.sha256,
            "probs_sha256": sha256_file(probs_path), "labels_sha256": sha256_file(labels_path),
            "data": f"test split of {data.source}"}
