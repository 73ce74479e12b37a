"""One predictor over onnxruntime, LiteRT and Keras: float probabilities in, whatever the model's dtype.

The backend is picked from the file's extension in :data:`BACKENDS` (adding a
runtime is one module and one line there). Only the ``.keras`` backend imports
TensorFlow; ``.onnx`` and ``.tflite`` models run on the base install.
"""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from ..bundle.cpu import cpu_notes
from ..bundle.files import MANIFEST_FILE, MODEL_FILE
from ..bundle.manifest import load_manifest
from ..bundle.targets import entry_by_content
from ..preprocess import complete_preprocessing, range_affine, to_model_input
from ..errors import EdgecnnError, ModelFileError, first_line
from ..fileio import sha256_file
from ..model_card import CARD_NAME, parse_card
from .base import Backend, Quantization, softmax

#: Model file extension -> "module:class" of its backend (imported on first use).
BACKENDS: dict[str, str] = {
    ".onnx": "edgecnn.runtime.onnx_backend:OnnxBackend",
    ".ort": "edgecnn.runtime.onnx_backend:OnnxBackend",  # ORT format (ONNX Runtime Mobile); same sessions
    ".tflite": "edgecnn.runtime.litert_backend:LiteRTBackend",
    ".keras": "edgecnn.runtime.keras_backend:KerasBackend",
}

_UINT8 = np.dtype(np.uint8)
_FLOAT32 = np.dtype(np.float32)
_MAX = np.maximum.reduce
_ONE_BITS = np.uint32(np.float32(1.0).view(np.uint32))  # 0x3F800000

__all__ = ["BACKENDS", "Backend", "Prediction", "Predictor", "Quantization", "backend_class"]


class Prediction(NamedTuple):
    """One ranked class of one image: unpacks as ``(label, probability)``."""

    label: str
    probability: float


def backend_class(path: str | os.PathLike) -> type[Backend]:
    """The backend class for a model file, from its extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in BACKENDS:
        raise ModelFileError(f"{path}: unknown model type '{suffix or '(no extension)'}' "
                             f"(expected one of {', '.join(BACKENDS)})")
    module, name = BACKENDS[suffix].split(":")
    return getattr(importlib.import_module(module), name)


class Predictor:
    """Classify image batches with an exported (or Keras) model; safe to share between threads."""

    def __init__(self, runtime: Backend, *, classes: Sequence[str], preprocessing: dict[str, Any],
                 precision: str, notes: Sequence[str] = ()) -> None:
        self.runtime = runtime
        self.classes = tuple(classes)
        self.preprocessing = sized_preprocessing(preprocessing, runtime.input_shape)
        self.precision = precision
        self.notes = list(notes)
        background = self.preprocessing.get("background")
        self._background = background if background in ("dark", "light") else None  # None: never auto-invert
        shape = runtime.input_shape
        self._shapes = (shape, shape[:-1]) if shape[-1] == 1 else (shape,)
        self._batch_shape = shape
        self._native_shape = (-1, *shape)
        self._range = self.preprocessing["input_range"]
        scale, offset = range_affine(self._range)
        self._affine = None if (scale, offset) == (1.0, 0.0) else (np.float32(scale), np.float32(offset))
        self._logits = self.preprocessing["output"] == "logits"
        self._input_quant, self._output_quant = runtime.input_quant, runtime.output_quant
        self._native_dtype = runtime.input_dtype
        self._needs_clip = self._quantized_range_overflows()
        self._from_pixels = self._pixel_converter()
        self._run, self._max_batch = runtime.run_native, runtime.max_batch
        self._output_table = self._output_converter()
        self._reference: tuple | None = None  # Predictor.load's arguments, for pickling

    @classmethod
    def load(cls, path: str | os.PathLike, *, threads: int | None = None,
             providers: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
             preprocessing: dict[str, Any] | None = None) -> "Predictor":
        """Load a ``.onnx``, ``.tflite`` or ``.keras`` model with its class names and preprocessing.

        ``threads`` sets the runtime's intra-op threads; ``providers`` the ONNX
        Runtime execution providers (default: CPU). ``class_names`` and
        ``preprocessing`` describe the model when the caller knows better than the
        file, e.g. a bundle's manifest for its Keras model kept in another folder.
        """
        path = Path(path)
        if not path.exists():
            raise ModelFileError(f"model file {path} not found")
        if path.is_dir():
            raise ModelFileError(f"model path {path} is a folder, expected a file ({', '.join(BACKENDS)})")
        runtime = backend_class(path)(path, threads=threads, providers=providers)
        _first_run(runtime)
        reference = (str(path.absolute()), threads, None if providers is None else list(providers),
                     None if class_names is None else list(class_names), preprocessing)
        classes, preprocessing, precision, notes = _model_info(runtime, class_names, preprocessing)
        predictor = cls(runtime, classes=classes, preprocessing=preprocessing, precision=precision, notes=notes)
        predictor._reference = reference
        return predictor

    def __reduce__(self) -> tuple[Callable[..., "Predictor"], tuple]:
        """Pickled by reference, its path and the settings it was loaded with, and loaded again on the other side
        (a worker process, a Ray actor): runtime sessions cannot be pickled."""
        if self._reference is None:
            raise TypeError(f"{self!r} was not made by Predictor.load, so it has no path to be loaded again from")
        return _load_again, self._reference

    @property
    def backend(self) -> str:
        """The runtime's name: "onnxruntime", "litert" or "keras"."""
        return self.runtime.name

    @property
    def path(self) -> Path:
        return self.runtime.path

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return self.runtime.input_shape

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """A batch (uint8 0..255 or float [0, 1], with or without the channel axis) in the model's own dtype.

        Raises ``ValueError`` saying what was expected and what was given.
        """
        if self._is_pixels(x):
            return self._from_pixels(x).reshape(self._native_shape)
        return self._to_native(to_model_input(x, self._batch_shape, self._range))

    def _is_pixels(self, x: Any) -> bool:
        """A uint8 batch of the model's image shape: the hot path's input."""
        return type(x) is np.ndarray and x.dtype is _UINT8 and x.shape[1:] in self._shapes and x.shape[0] > 0

    def _to_native(self, x: np.ndarray) -> np.ndarray:
        """Float model input (its own range and shape) -> the model's input dtype (quantized with its own scale).

        In-place steps on one temporary: this runs on every float call, so each
        extra pass over the batch shows in the Predictor's overhead.
        """
        quant = self._input_quant
        if quant is None:
            return x if x.dtype is self._native_dtype else x.astype(self._native_dtype)
        q = np.divide(x, np.float32(quant.scale))
        np.rint(q, out=q)
        q += np.float32(quant.zero_point)
        if self._needs_clip:
            info = np.iinfo(self._native_dtype)
            np.clip(q, info.min, info.max, out=q)
        return q.astype(self._native_dtype)

    def _quantized_range_overflows(self) -> bool:
        """Whether the input range quantized with the input's scale leaves its integer range (then values are clipped)."""
        quant = self._input_quant
        if quant is None:
            return False
        info = np.iinfo(self._native_dtype)
        ends = to_model_input(np.array([0.0, 1.0], dtype=np.float32).reshape(2, 1, 1, 1), (1, 1, 1), self._range)
        ends = np.rint(ends.ravel() / np.float32(quant.scale)) + np.float32(quant.zero_point)
        return bool(ends.min() < info.min or ends.max() > info.max)

    def _from_floats(self, x: np.ndarray) -> np.ndarray | None:
        """float32 [0, 1] batch of the model's shape -> native input, checked in one pass; None when not sure.

        Read as unsigned integers, the float32 bit patterns of 0.0 ... 1.0 are
        exactly 0 ... 0x3F800000, while negatives (sign bit set), infinities and
        NaN all lie above: one integer maximum checks range and finiteness
        together. Only -0.0 is refused wrongly; the general path takes it.
        """
        if _MAX(x.view(np.uint32), axis=None) > _ONE_BITS:
            return None
        if self._affine is not None:  # the model reads another range than [0, 1]: to_model_input's arithmetic
            scale, offset = self._affine
            x = x * scale
            x += offset
        return self._to_native(x).reshape(self._native_shape)

    def _pixel_converter(self) -> Callable[[np.ndarray], np.ndarray]:
        """uint8 pixels -> native input for the hot path: the cheapest function equal to the general path.

        The fast function is checked against the general path on all 256 pixel
        values, so it gives bit-identical inputs; otherwise the 256 values are looked up.
        """
        pixels = np.arange(256, dtype=np.uint8)
        table = self._to_native(to_model_input(pixels.reshape(256, 1, 1, 1), (1, 1, 1), self._range)).reshape(256)
        fast = None
        if self._input_quant is None and table.dtype == np.float32:
            scale = np.float32(255.0)

            def fast(x):  # to_model_input's own arithmetic, without its checks and second array
                y = x.astype(np.float32)
                y /= scale
                return y
        elif table.dtype.itemsize == 1:  # 8-bit input quantized with scale 1/255: a constant shift
            offset, dtype = np.uint8(int(table[0]) % 256), table.dtype

            def fast(x):
                return (x + offset).view(dtype)
        if fast is not None and np.array_equal(fast(pixels), table):
            return fast
        return table.take

    def _output_converter(self) -> np.ndarray | None:
        """For 8-bit outputs, the 256 dequantized values indexed by the output's bytes."""
        quant = self._output_quant
        if quant is None or self.runtime.output_dtype.itemsize != 1:
            return None
        values = np.arange(256, dtype=np.uint8).view(self.runtime.output_dtype)
        return (values.astype(np.float32) - np.float32(quant.zero_point)) * np.float32(quant.scale)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, float32 of shape (N, classes), for a batch of N >= 1 images."""
        step = self._max_batch
        raw = None
        if type(x) is np.ndarray and x.shape[1:] in self._shapes and 0 < x.shape[0] <= step:
            if x.dtype is _UINT8:  # the hot paths, inlined: see _is_pixels and _from_floats
                raw = self._run(self._from_pixels(x).reshape(self._native_shape))
            elif x.dtype is _FLOAT32:
                native = self._from_floats(x)
                raw = None if native is None else self._run(native)
        if raw is None:
            native = self.prepare(x)
            raw = self._run(native) if len(native) <= step else np.concatenate(
                [self._run(native[i:i + step]) for i in range(0, len(native), step)])
        return softmax(self._dequantize(raw)) if self._logits else self._dequantize(raw)

    def _dequantize(self, raw: np.ndarray) -> np.ndarray:
        """The model's outputs as float32, whatever its output dtype."""
        if self._output_table is not None:
            return self._output_table.take(raw.view(np.uint8))
        quant = self._output_quant
        if quant is None:
            return raw if raw.dtype is _FLOAT32 else raw.astype(np.float32)
        return (raw.astype(np.float32) - np.float32(quant.zero_point)) * np.float32(quant.scale)

    def rank(self, probabilities: np.ndarray, top_k: int = 1) -> list[list[Prediction]]:
        """The ``top_k`` most probable classes of each row, most probable first (ties: lower index first)."""
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        probabilities = np.asarray(probabilities)
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
        return [[Prediction(self.classes[i], float(row[i])) for i in idx] for row, idx in zip(probabilities, order)]

    def classify(self, x: np.ndarray, top_k: int = 1) -> list[list[Prediction]]:
        """Per image, the ``top_k`` (label, probability) pairs, most probable first."""
        return self.rank(self.predict(x), top_k)

    def image_input(self, src, *, invert: str | bool = "auto") -> np.ndarray:
        """One image file or PIL image prepared for this model (see :func:`edgecnn.preprocess.load_image`)."""
        from ..preprocess import load_image

        height, width, channels = self.runtime.input_shape
        return load_image(src, size=(height, width), channels=channels, invert=invert,
                          background=self._background, resize=self.preprocessing["resize"])

    def predict_images(self, images: Sequence, *, invert: str | bool = "auto") -> np.ndarray:
        """Probabilities for image files or PIL images; an unreadable one raises ``ImageError`` naming it."""
        images = [images] if isinstance(images, (str, os.PathLike)) or hasattr(images, "getpixel") else list(images)
        if not images:
            raise ValueError("expected at least one image, got none")
        return self.predict(np.stack([self.image_input(src, invert=invert) for src in images]))

    def __repr__(self) -> str:
        return f"Predictor({str(self.path)!r}, backend={self.backend!r}, precision={self.precision!r})"


def _load_again(path: str, threads: int | None, providers: list[str] | None, class_names: list[str] | None,
                preprocessing: dict[str, Any] | None) -> Predictor:
    """A pickled Predictor, loaded again from its file."""
    return Predictor.load(path, threads=threads, providers=providers, class_names=class_names,
                          preprocessing=preprocessing)


def sized_preprocessing(preprocessing: dict[str, Any], input_shape: tuple[int, int, int]) -> dict[str, Any]:
    """Every preprocessing key, checked (``ValueError``), the size taken from the model: its input is the truth."""
    height, width, channels = input_shape
    return complete_preprocessing({**preprocessing, "height": height, "width": width, "channels": channels})


def _first_run(runtime: Backend) -> None:
    """Run the model once on a blank image, so a file that loads but cannot run fails here, as a model error."""
    try:
        runtime.run_native(np.zeros((1, *runtime.input_shape), dtype=runtime.input_dtype))
    except Exception as exc:  # runtimes raise RuntimeError, ValueError or their own types
        raise ModelFileError(f"model {runtime.path} loads but cannot run (corrupt?): {first_line(exc)}") from None


#: Why a file has to be described from its own shape (see _model_info).
_UNDESCRIBED = "no edgecnn model card, no matching manifest"


def _model_info(runtime: Backend, class_names: Sequence[str] | None = None,
                preprocessing: dict[str, Any] | None = None) -> tuple[tuple[str, ...], dict[str, Any], str, list[str]]:
    """Class names, preprocessing and precision: the caller's, else the bundle manifest, else the model's own
    metadata (its card).

    A file described by none of them gets class indices as labels and
    preprocessing read from the model itself (its input shape, and the input
    range its own rescaling layer fixes), each with a note: never another
    model's (e.g. Fashion-MNIST's) labels or image size, never a range the model
    contradicts.
    """
    notes: list[str] = []
    found = {"class_names": None, "preprocessing": None, "precision": None}
    given = ("the caller", {"class_names": list(class_names) if class_names is not None else None,
                            "preprocessing": preprocessing})
    for source, described in (_metadata_description(runtime, notes), _manifest_description(runtime.path, notes),
                              given):
        for key, value in described.items():
            if value is not None:
                found[key] = value
                if key == "class_names":
                    names_source = source
    names, preprocessing = found["class_names"], found["preprocessing"]
    if names is None:
        names = [str(i) for i in range(runtime.num_classes)]
        notes.append(f"{runtime.path.name} carries no class names ({_UNDESCRIBED}): labels are class indices")
    elif len(names) != runtime.num_classes:
        raise ModelFileError(f"{names_source} lists {len(names)} class names but {runtime.path} "
                             f"has {runtime.num_classes} outputs")
    own = runtime.own_input_range
    if preprocessing is None:
        # the default for a model other than the reference; the rest (size from the model, probabilities, no
        # background) is what complete_preprocessing adds
        preprocessing = {"resize": "center-crop", "input_range": own[0] if own else "0-1"}
        pixels = f"input range {own[0]} ({own[1]})" if own else "pixels scaled to 0-1"
        notes.append(f"{runtime.path.name} carries no preprocessing ({_UNDESCRIBED}): assumed from its "
                     f"{'x'.join(map(str, runtime.input_shape))} input: {pixels}, center-crop resize, "
                     "probabilities out, no auto-invert")
    elif own and preprocessing.get("input_range", "0-1") != own[0]:
        raise ModelFileError(f"{runtime.path}: the preprocessing recorded for it reads input range "
                             f"{preprocessing.get('input_range', '0-1')}, but {own[1]}, so it reads {own[0]}")
    try:
        preprocessing = sized_preprocessing(preprocessing, runtime.input_shape)
    except ValueError as exc:
        raise ModelFileError(f"the preprocessing recorded for {runtime.path}: {exc}") from None
    return tuple(names), preprocessing, found["precision"] or runtime.precision, notes


def _manifest_description(path: Path, notes: list[str]) -> tuple[str, dict[str, Any]]:
    """What the bundle's manifest says about this file, matched by content (nothing when no entry has its sha256)."""
    source = str(path.parent / MANIFEST_FILE)
    if not (path.parent / MANIFEST_FILE).is_file():
        return source, {}
    try:
        manifest = load_manifest(path.parent)
    except EdgecnnError as exc:
        notes.append(f"ignoring the bundle manifest: {exc}")
        return source, {}
    digest = sha256_file(path)
    match = entry_by_content(manifest, path, digest)
    if match is None and (manifest.model is None or manifest.model.sha256 != digest):
        if path.name == MODEL_FILE or any(e.file == path.name for e in manifest.exports.values()):
            notes.append(f"{path.name} is not the file {source} describes (sha256 differs): its class names "
                         "and preprocessing are not used")
        return source, {}
    if match is not None:
        notes += cpu_notes(match[1], path.parent, manifest.model.file if manifest.model else None)
    return source, {"class_names": manifest.class_names, "preprocessing": manifest.preprocessing,
                    "precision": match[1].precision if match else None}


def _metadata_description(runtime: Backend, notes: list[str]) -> tuple[str, dict[str, Any]]:
    """Class names and preprocessing stored in the model file itself (ONNX metadata_props, a TFLite model card)."""
    source = f"the metadata of {runtime.path}"
    found: dict[str, Any] = {}
    if CARD_NAME in runtime.metadata:  # a TFLite card that does not parse arrives alone under this key
        try:
            parse_card(runtime.metadata[CARD_NAME], runtime.path)
        except ModelFileError as exc:
            notes.append(f"ignoring the model card: {exc}")
    for key, kind in (("class_names", list), ("preprocessing", dict)):
        if key not in runtime.metadata:
            continue
        try:
            value = json.loads(runtime.metadata[key])
        except json.JSONDecodeError:
            value = None
        if isinstance(value, kind) and (kind is dict or all(isinstance(v, str) for v in value)):
            found[key] = value
        else:
            notes.append(f"ignoring metadata '{key}' of {runtime.path}: not a JSON {kind.__name__}")
    return source, found
