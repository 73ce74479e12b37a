"""The reference CNN, safe loading of Keras files, what a model says of its own input, its layer table and diagram."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import tfquiet
from .datasets import CLASS_NAMES, INPUT_SHAPE
from .errors import ModelFileError, first_line
from .fileio import atomic_path

#: Layer class, output shape (without batch) and parameter count of the reference.
REFERENCE_LAYERS: tuple[tuple[str, tuple, int], ...] = (
    ("Conv2D", (28, 28, 32), 320),
    ("MaxPooling2D", (14, 14, 32), 0),
    ("Conv2D", (14, 14, 64), 18_496),
    ("MaxPooling2D", (7, 7, 64), 0),
    ("Flatten", (3136,), 0),
    ("Dense", (100,), 313_700),
    ("Dropout", (100,), 0),
    ("Dense", (10,), 1_010),
)
REFERENCE_PARAMS = 333_526


def build_model(input_shape: tuple[int, ...] = INPUT_SHAPE, num_classes: int = len(CLASS_NAMES)):
    """The textbook CNN: two conv/pool blocks, a 100-unit dense layer, dropout 0.4.

    Layers are named explicitly (Keras's names in a fresh process): automatic names
    count up per process, and a second build would otherwise save different bytes.
    """
    keras = tfquiet.keras()
    layers = keras.layers
    return keras.Sequential([
        keras.Input(shape=input_shape, name="input"),
        layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2d"),
        layers.MaxPooling2D(2, name="max_pooling2d"),
        layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2d_1"),
        layers.MaxPooling2D(2, name="max_pooling2d_1"),
        layers.Flatten(name="flatten"),
        layers.Dense(100, activation="relu", name="dense"),
        layers.Dropout(0.4, name="dropout"),
        layers.Dense(num_classes, activation="softmax", name="dense_1"),
    ], name="fashion_cnn")


def compile_model(model) -> None:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def save_model(model, path: str | os.PathLike) -> Path:
    """Save atomically and without optimizer state (a deployable, smaller file)."""
    clean = type(model).from_config(model.get_config())  # uncompiled: no optimizer variables
    clean.set_weights(model.get_weights())
    with atomic_path(path, suffix=".keras") as tmp:
        with tfquiet.quiet():
            clean.save(tmp)
    return Path(path)


def load_model(path: str | os.PathLike, *, unsafe: bool = False):
    """Load a ``.keras`` file with Keras safe mode on, with one-line errors.

    Safe mode refuses layers that would run arbitrary Python (``Lambda``); only
    ``unsafe=True`` (``--unsafe``) lifts that, for files the user trusts.
    """
    import zipfile

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} not found")
    if path.is_dir():
        raise ModelFileError(f"model path {path} is a folder, expected a .keras file")
    if path.suffix != ".keras":
        raise ModelFileError(f"{path} is not a Keras model (expected a .keras file)")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a valid .keras file (not a zip archive; empty, truncated or another format)")
    keras = tfquiet.keras()
    try:
        with tfquiet.quiet():
            model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
    except Exception as exc:  # Keras raises many types for bad files
        chain = [exc]  # Keras wraps the real reason (e.g. "Could not locate function 'system'") in generic ones
        while (chain[-1].__cause__ or chain[-1].__context__) and len(chain) < 20:
            chain.append(chain[-1].__cause__ or chain[-1].__context__)
        if any("safe_mode" in str(e) or "Lambda" in str(e) for e in chain):
            raise ModelFileError(f"{path} contains a Lambda layer (arbitrary Python code); refused in safe mode. "
                                 "Pass --unsafe only if you trust this file") from exc
        raise ModelFileError(f"cannot load Keras model {path}: {first_line(chain[-1])}") from exc
    if not getattr(model, "inputs", None) or len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelFileError(f"{path} is not a single-input, single-output image classifier")
    return model


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple
    params: int


def layer_table(model) -> list[LayerRow]:
    """One row per layer: name, class, output shape without the batch axis, parameters."""
    return [LayerRow(layer.name, type(layer).__name__, tuple(layer.output.shape[1:]), int(layer.count_params()))
            for layer in model.layers]


def format_layer_table(rows: list[LayerRow]) -> str:
    head = f"{'layer':<18} {'type':<14} {'output shape':<18} {'params':>9}"
    lines = [head, "-" * len(head)]
    lines += [f"{r.name:<18} {r.kind:<14} {str(r.output_shape):<18} {r.params:>9,}" for r in rows]
    lines += ["-" * len(head), f"{'total':<52} {sum(r.params for r in rows):>9,}"]
    return "\n".join(lines)


def graphviz_available() -> bool:
    try:
        import pydot  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


def write_architecture(model, path: str | os.PathLike) -> Path | None:
    """Draw the architecture with shapes; ``None`` when Graphviz/pydot is missing."""
    if not graphviz_available():
        return None
    keras = tfquiet.keras()
    with atomic_path(path, suffix=".png") as tmp, tfquiet.quiet():
        keras.utils.plot_model(model, to_file=str(tmp), show_shapes=True, show_layer_names=True, dpi=96)
    return Path(path)


def model_io(model, path: str | os.PathLike = "the model") -> tuple[tuple[int, ...], int]:
    """Input shape (without batch) and number of classes, read from the model itself.

    Only image classifiers are exported: one (N, H, W, C) input with 1 or 3
    channels (:func:`load_model` refused several inputs or outputs), one (N, classes)
    output; anything else is refused naming ``path``.
    """
    dims, out = tuple(model.inputs[0].shape[1:]), tuple(model.outputs[0].shape[1:])
    if len(dims) != 3 or any(d is None or d < 1 for d in dims) or dims[-1] not in (1, 3):
        raise ModelFileError(f"{path}: expected an image classifier with input (N, H, W, C), C = 1 or 3, "
                             f"got {tuple(model.inputs[0].shape)}")
    if len(out) != 1 or out[0] is None or out[0] < 2:
        raise ModelFileError(f"{path}: expected an image classifier with output (N, classes), classes >= 2, "
                             f"got {tuple(model.outputs[0].shape)}")
    return tuple(int(d) for d in dims), int(out[0])


#: Layers that do nothing at inference and may precede the model's own rescaling.
_INFERENCE_IDENTITY = ("Random", "Dropout", "GaussianNoise", "InputLayer")


def leading_layer(model) -> Any | None:
    """The first layer that changes inputs at inference, looking inside nested models."""
    for layer in model.layers:
        if type(layer).__name__.startswith(_INFERENCE_IDENTITY):
            continue
        if hasattr(layer, "layers") and layer.layers:  # a nested Sequential/Model, e.g. a preprocessing block
            return leading_layer(layer)
        return layer
    return None


def detected_input_range(model) -> tuple[str, str] | None:
    """(range, why) from a leading ``Rescaling`` or ``Normalization`` layer; None when the model has neither."""
    layer = leading_layer(model)
    kind = type(layer).__name__ if layer is not None else None
    if kind == "Rescaling":
        scale = float(np.max(np.abs(np.asarray(layer.scale, dtype=np.float64))))
        # Rescaling(1/255) or (1/127.5, offset=-1) reads 0..255 pixels; Rescaling(2, offset=-1) reads [0, 1]
        return ("0-255" if scale * 255 <= 2.5 else "0-1"), f"its first layer {layer.name} is Rescaling(scale={scale:g})"
    if kind == "Normalization":
        mean = float(np.max(np.asarray(layer.mean, dtype=np.float64)))
        return ("0-255" if mean > 2.0 else "0-1"), f"its first layer {layer.name} is Normalization(mean up to {mean:g})"
    return None


def all_layers(model) -> list:
    """Every layer in order, each nested model's layers right after the nested model itself: a user's wrapper
    (``Input -> Rescaling -> MobileNetV2``) holds the whole network as one layer."""
    found = []
    for layer in getattr(model, "layers", ()):
        found.append(layer)
        found += all_layers(layer)
    return found


def layer_names(model) -> set[str]:
    """Every layer name of the model and its own, nested models' included (graph scopes are named after them)."""
    return {model.name, *(layer.name for layer in all_layers(model))}
