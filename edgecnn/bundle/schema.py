"""Typed, checked views of the bundle's JSON files: manifest.json, verify.json and bench.json.

Each file carries a ``schema`` version. :func:`parse` builds a frozen dataclass
from the JSON, checking the version and the type of every field the code reads
against the dataclass's own annotations, so a damaged or foreign file fails at
once with one line naming the file and the field (``exports.tflite.sha256``)
instead of a ``KeyError`` deep inside a command. Fields the classes do not
declare are kept in the file and ignored here.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union

from ..errors import EdgecnnError

#: What each file is called in messages.
MANIFEST_WHAT, VERIFY_WHAT, BENCH_WHAT = "manifest", "verify results", "bench results"
#: The schema version each file is written with (and the only one read).
SCHEMA_VERSIONS = {MANIFEST_WHAT: 1, VERIFY_WHAT: 1, BENCH_WHAT: 1}

T = TypeVar("T")


class SchemaError(EdgecnnError):
    """A bundle JSON file that does not have the fields and types edgecnn writes."""


def _kind(annotation: Any) -> str:
    """A type as a person reads it in an error message."""
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    if annotation in names:
        return names[annotation]
    origin = typing.get_origin(annotation)
    if origin is list:
        return "a list"
    if origin is dict or (dataclasses.is_dataclass(annotation)):
        return "an object"
    return str(annotation)


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _convert(annotation: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise SchemaError(f"{where} must be an object, got {_json_kind(value)}")
        return _build(annotation, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise SchemaError(f"{where} must be a list, got {_json_kind(value)}")
        return [_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SchemaError(f"{where} must be an object, got {_json_kind(value)}")
        return {key: _convert(args[1], item, f"{where}.{key}") for key, item in value.items()}
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) if annotation is float
          else isinstance(value, int) and not isinstance(value, bool) if annotation is int
          else isinstance(value, annotation))
    if not ok:
        raise SchemaError(f"{where} must be {_kind(annotation)}, got {_json_kind(value)}")
    return float(value) if annotation is float else value


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    values = {}
    for spec in dataclasses.fields(cls):
        name = f"{where}.{spec.name}" if where else spec.name
        if spec.name not in data:
            required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
            if required:
                raise SchemaError(f"{name} is missing")
            continue
        values[spec.name] = _convert(hints[spec.name], data[spec.name], name)
    return cls(**values)


def parse(cls: type[T], data: Any, path: str | Path, what: str) -> T:
    """``data`` (the JSON of the file ``path``) as ``cls``; one-line :class:`SchemaError` naming file and field."""
    if not isinstance(data, dict):
        raise SchemaError(f"{what} {path} must be a JSON object, got {_json_kind(data)}")
    expected = SCHEMA_VERSIONS[what]
    version = data.get("schema")
    if version != expected:
        found = "has no 'schema' field" if version is None else f"has schema {version!r}"
        raise SchemaError(f"{what} {path} {found}; this edgecnn reads schema {expected} "
                          "(remake the file with this version of edgecnn)")
    try:
        return _build(cls, data, "")
    except SchemaError as exc:
        raise SchemaError(f"{what} {path}: field {exc}") from None


def read_checked(cls: type[T], path: str | Path, what: str) -> T:
    """Read the JSON file ``path`` and :func:`parse` it as ``cls``."""
    from ..fileio import read_json

    return parse(cls, read_json(path, what=what), path, what)


# --------------------------------------------------------------------------- manifest.json


@dataclass(frozen=True)
class ModelSection:
    """The Keras file the exports were made from."""

    file: str
    sha256: str
    input_shape: list[int]
    classes: int


@dataclass(frozen=True)
class VerifyStamp:
    """The last verify result of one export, as the manifest keeps it."""

    passed: bool
    verified_at: str
    accuracy: float | None = None
    accuracy_delta_points: float | None = None
    agreement: float | None = None
    max_abs_diff: float | None = None
    failures: list[str] = field(default_factory=list)
    confident_agreement: float | None = None  # the gated agreement: near ties (edgecnn.metrics) not counted
    verified_on: dict[str, Any] | None = None  # edgecnn.versions.cpu_class() of the verifying machine
    passed_on: list[dict[str, Any]] = field(default_factory=list)  # every CPU class this file has passed on


@dataclass(frozen=True)
class LayerPrecision:
    """One layer of a mixed-precision export: the precision it runs in and why."""

    name: str
    op: str
    precision: str  # "int8" | "float32" | "int16x8"
    #: "error" (kept float: the worst harm), "latency" (int8 kernel slower), "delegate" (its int8 ops run outside
    #: XNNPACK, and the whole model measured faster with it float), "budget" (the drop allows int8)
    reason: str
    sqnr_db: float | None = None
    harm_points: float | None = None
    float32_s: float | None = None  # the layer alone at batch 1, 1 thread, p50 (None: not timed)
    int8_s: float | None = None
    weight_bytes_float32: int | None = None  # as stored in the float32 and the int8 file (None: older manifests)
    weight_bytes_int8: int | None = None
    cpu_ops: list[str] = field(default_factory=list)  # its int8 ops XNNPACK leaves on the CPU (e.g. HARD_SWISH)


@dataclass(frozen=True)
class MixedPrecision:
    """How the layer precisions of an export were chosen: the accuracy budget and what it reached."""

    max_accuracy_drop_points: float
    validation_images: int
    validation_source: str
    float_accuracy: float
    all_int8_accuracy: float
    accuracy: float  # the score the budget is in (see measure)
    met: bool
    measure: str = "accuracy"  # "accuracy" on labelled validation images, "agreement" with float on unlabelled ones
    agreement: float | None = None  # the file's top-1 agreement with float on the validation images, no near ties
    min_agreement: float | None = None  # the validation agreement the choice had to reach too (a fraction)
    agreement_gate: float | None = None  # verify's int8 gate it was derived from (+ a margin for the sample)
    misses: list[str] = field(default_factory=list)  # what the choice missed (empty when met)
    #: The whole-model timing behind reason "delegate" (mixed.DelegateCheck); None when no layer needed it.
    delegate: dict[str, Any] | None = None
    #: The whole-model timing behind reason "latency" (mixed.LatencyCheck); None when no layer needed it.
    latency: dict[str, Any] | None = None


@dataclass(frozen=True)
class ExportRecord:
    """One exported file, as the exporter described it."""

    file: str
    format: str
    precision: str
    sha256: str
    runtime: str | None = None
    bytes: int | None = None
    source_sha256: str | None = None
    verify: VerifyStamp | None = None
    layers: list[LayerPrecision] | None = None
    mixed_precision: MixedPrecision | None = None
    exported_on: dict[str, Any] | None = None  # edgecnn.versions.cpu_class() of the exporting machine
    versions: dict[str, str | None] | None = None  # the packages it was made with, runtimes included


@dataclass(frozen=True)
class ReferenceSection:
    """The Keras probabilities on the test set saved at export, for verifying without TensorFlow."""

    probs_file: str
    labels_file: str
    images: int
    model_sha256: str
    probs_sha256: str
    labels_sha256: str | None = None
    keras_accuracy: float | None = None
    data: str | None = None


@dataclass(frozen=True)
class DataSection:
    """The labelled images of the export: where they are, how they were split, and a fingerprint to spot changes."""

    kind: str  # "fashion-mnist" | "folders" | "npz"
    source: str
    path: str | None = None
    fingerprint: str | None = None
    split: dict[str, Any] | None = None
    counts: dict[str, Any] | None = None
    #: The compact copy of the test split kept in the bundle (data other than Fashion-MNIST).
    test_set_file: str | None = None
    test_set_sha256: str | None = None
    test_set_bytes: int | None = None


@dataclass(frozen=True)
class Manifest:
    schema: int
    exports: dict[str, ExportRecord] = field(default_factory=dict)
    model: ModelSection | None = None
    class_names: list[str] | None = None
    preprocessing: dict[str, Any] | None = None
    reference: ReferenceSection | None = None
    required_operators: dict[str, Any] | None = None  # the ORT Mobile operators config of the .ort exports
    data: DataSection | None = None


# --------------------------------------------------------------------------- verify.json


@dataclass(frozen=True)
class Disagreement:
    """A test image on which an export's top-1 differs from the reference's."""

    index: int
    reference_label: int
    reference_prob: float
    export_label: int
    export_prob: float


@dataclass(frozen=True)
class VerifiedExport:
    """One export's results against the reference."""

    file: str
    passed: bool
    failures: list[str]
    precision: str | None = None
    bytes: int | None = None
    images: int | None = None
    accuracy: float | None = None
    accuracy_delta_points: float | None = None
    agreement: float | None = None
    flipped: int | None = None
    confident_agreement: float | None = None  # the gated agreement: near ties (edgecnn.metrics) not counted
    near_tie_flips: int | None = None
    max_abs_diff: float | None = None
    confusion_matrix: list[list[int]] | None = None
    disagreements: list[Disagreement] = field(default_factory=list)
    thresholds: dict[str, float | None] | None = None
    compatibility: dict[str, Any] | None = None  # mobile checks: "summary" lines, details, "failures"


@dataclass(frozen=True)
class VerifiedReference:
    kind: str
    accuracy: float
    confusion_matrix: list[list[int]]


@dataclass(frozen=True)
class CrossRuntime:
    """Two float32 exports of different runtimes compared with each other."""

    a: str
    b: str
    agreement: float
    max_abs_diff: float | None = None


@dataclass(frozen=True)
class ArmVersusX86:
    """An ARM run against the same file run on x86."""

    agreement: float
    flipped: int
    near_tie_flips: int  # flips where the x86 run's top-1 led by less than edgecnn.metrics.NEAR_TIE_MARGIN
    max_abs_diff: float | None = None
    flipped_indices: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ArmVerified:
    """One export on one emulated ARM core (verify --arch arm64); no time: emulated times say nothing."""

    export: str
    cpu: str
    cpu_class: dict[str, Any]
    emulator: str
    passed: bool
    failures: list[str]
    images: int
    full_test_set: bool
    precision: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    accuracy: float | None = None
    accuracy_delta_points: float | None = None
    agreement: float | None = None
    confident_agreement: float | None = None
    flipped: int | None = None
    max_abs_diff: float | None = None
    x86: ArmVersusX86 | None = None
    thresholds: dict[str, float | None] | None = None


@dataclass(frozen=True)
class VerifyFile:
    schema: int
    created: str
    passed: bool
    reference: VerifiedReference
    exports: dict[str, VerifiedExport]
    cross_runtime: list[CrossRuntime] = field(default_factory=list)
    arm64: list[ArmVerified] = field(default_factory=list)
    test_set: str | None = None
    class_names: list[str] | None = None


# --------------------------------------------------------------------------- bench.json


@dataclass(frozen=True)
class Latency:
    p50: float
    p99: float


@dataclass(frozen=True)
class BenchRow:
    """One measured case: a model, a mode, a batch size and a thread count."""

    name: str
    mode: str
    batch_size: int
    threads: int
    latency_s: Latency
    images_per_s: float
    web_app_bytes: int | None = None  # browser rows: the size of the web app folder that was timed


@dataclass(frozen=True)
class BenchFile:
    schema: int
    results: list[BenchRow]
    machine: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
