"""What every exporter reads: the loaded Keras model, its serving function and images.

One :class:`ExportSource` is built per ``export_model`` call and shared by the
formats, so the model is loaded once, the TensorFlow function traced once, and
TFLite int8 and ONNX int8 are calibrated on the very same images.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import tfquiet
from ..datasets import CLASS_NAMES, INPUT_SHAPE, load_dataset
from ..datasets.splits import calibration_indices, held_out_indices
from ..preprocess import DEFAULT_PREPROCESSING, to_model_input
from ..errors import EdgecnnError

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
CALIBRATION_SEED = 0
#: Validation images for choosing mixed precision (the rest of the calibration pool, at most this many).
VALIDATION_IMAGES = 2000


@dataclass
class ImageSets:
    """Calibration images (raw, before ``to_model_input``) and an optional labelled test set."""

    calibration: np.ndarray | None
    calibration_source: str | None
    x_test: np.ndarray | None = None
    #: Labels of the calibration pool: its images not drawn for calibration are the validation split.
    calibration_labels: np.ndarray | None = None
    y_test: np.ndarray | None = None
    test_source: str | None = None
    class_names: list[str] | None = None


@dataclass
class ExportSource:
    """The model being exported and everything derived from it, computed at most once."""

    model: Any
    model_path: Path
    sha256: str
    input_shape: tuple[int, int, int]
    classes: int
    images: ImageSets
    calibration_samples: int = 500
    opset: int = 17
    batch: int | None = None  # None: a dynamic batch; 1: a static batch-1 signature for runtimes that cannot resize
    #: Points of validation accuracy int8 may lose: mixed precision keeps layers float to stay within it
    #: (None: every layer int8, as the converter does on its own).
    max_accuracy_drop: float | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        if self.images.class_names is not None:
            return list(self.images.class_names)
        if self.classes == len(CLASS_NAMES):
            return list(CLASS_NAMES)
        return [str(i) for i in range(self.classes)]

    @property
    def preprocessing(self) -> dict:
        """How a raw image becomes this model's input (the reference's for Fashion-MNIST-shaped models)."""
        if self.input_shape == INPUT_SHAPE:
            return dict(DEFAULT_PREPROCESSING)
        height, width, channels = self.input_shape
        return {"height": height, "width": width, "channels": channels, "scale": 1 / 255, "background": None}

    def calibration(self) -> np.ndarray:
        """``calibration_samples`` images as float32 model input, drawn with a fixed seed (cached)."""
        if "calibration" not in self.cache:
            if self.images.calibration is None:
                raise EdgecnnError(
                    f"model {self.model_path} takes {self.input_shape} images with {self.classes} classes, not "
                    f"Fashion-MNIST's {INPUT_SHAPE} with {len(CLASS_NAMES)}: int8 export needs calibration images; "
                    "pass --calibration-data FILE.npz (array 'x' or 'x_train')")
            pick = calibration_indices(len(self.images.calibration), self.calibration_samples, seed=CALIBRATION_SEED)
            self.cache["calibration"] = to_model_input(self.images.calibration[pick], self.input_shape)
        return self.cache["calibration"]

    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        """Labelled images that are neither calibration nor test images: float32 model input and labels.

        The test set stays untouched for verify; an accuracy budget met on
        these images is then checked independently there.
        """
        pool, labels = self.images.calibration, self.images.calibration_labels
        if labels is None:
            raise EdgecnnError(f"choosing mixed precision for {self.model_path} needs labelled validation images: "
                               "pass --calibration-data FILE.npz with labels 'y' (or 'y_train') beside 'x'")
        picked = calibration_indices(len(pool), self.calibration_samples, seed=CALIBRATION_SEED)
        rest = held_out_indices(len(pool), picked, VALIDATION_IMAGES)
        if len(rest) == 0:
            raise EdgecnnError(f"all {len(pool)} images of {self.images.calibration_source} calibrate the model: "
                               "none is left for validation (lower --calibration-samples)")
        return to_model_input(pool[rest], self.input_shape), np.asarray(labels[rest], dtype=np.int64)

    def validation_source(self) -> str:
        pool = self.images.calibration
        n = len(held_out_indices(len(pool), calibration_indices(len(pool), self.calibration_samples,
                                                                  seed=CALIBRATION_SEED), VALIDATION_IMAGES))
        return f"{n} of {self.images.calibration_source}, not among the calibration images"

    def calibration_info(self) -> dict:
        return {"images": int(len(self.calibration())), "seed": CALIBRATION_SEED, "source": self.images.calibration_source}

    def serving_function(self):
        """A ``tf.function`` over the model (batch: dynamic, or ``batch``): input ``input``, output ``probabilities``."""
        if "serving" not in self.cache:
            tf = tfquiet.tensorflow()
            model = self.model

            @tf.function(input_signature=[tf.TensorSpec((self.batch, *self.input_shape), tf.float32, name=INPUT_NAME)])
            def serve(x):
                return {OUTPUT_NAME: model(x, training=False)}

            self.cache["serving"] = serve
        return self.cache["serving"]


def load_images(input_shape: tuple[int, ...], classes: int, *, calibration_data: str | os.PathLike | None = None,
                data_dir: str | os.PathLike | None = None) -> ImageSets:
    """Calibration and test images: from ``calibration_data`` when given, else Fashion-MNIST if the model fits it."""
    sets = ImageSets(None, None)
    if calibration_data is not None:
        sets = read_calibration_npz(calibration_data, input_shape, classes)
    fits_dataset = tuple(input_shape) == INPUT_SHAPE and classes == len(CLASS_NAMES)
    if fits_dataset and (sets.calibration is None or sets.x_test is None):
        data = load_dataset(data_dir)
        if sets.calibration is None:
            sets.calibration, sets.calibration_source = data.x_train, f"Fashion-MNIST training images ({data.source})"
            sets.calibration_labels = data.y_train
        if sets.x_test is None:
            sets.x_test, sets.y_test, sets.test_source = data.x_test, data.y_test, f"Fashion-MNIST test set ({data.source})"
    return sets


def read_calibration_npz(path: str | os.PathLike, input_shape: tuple[int, ...], classes: int) -> ImageSets:
    """Read a user's ``.npz``: images ``x`` (or ``x_train``), optional ``x_test``/``y_test`` and ``class_names``.

    Everything is checked here so that a wrong file fails before any conversion
    starts, with one line naming the file and the array.
    """
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise EdgecnnError(f"calibration data {path} not found" if not path.exists()
                           else f"calibration data {path} is a folder, expected a .npz file")
    if not zipfile.is_zipfile(path):
        raise EdgecnnError(f"calibration data {path} is not a .npz file (not a zip archive)")
    try:
        loaded = np.load(path, allow_pickle=False)
        with loaded:
            arrays = {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise EdgecnnError(f"calibration data {path} is not a readable .npz file ({exc})") from None
    key = "x" if "x" in arrays else "x_train" if "x_train" in arrays else None
    if key is None:
        raise EdgecnnError(f"calibration data {path} has no array 'x' or 'x_train' (found: {', '.join(arrays) or 'none'})")
    _check_images(arrays[key], input_shape, f"{path}: array '{key}'")
    sets = ImageSets(arrays[key], f"{path} ('{key}')")
    label_key = {"x": "y", "x_train": "y_train"}[key]
    if label_key in arrays:
        labels = arrays[label_key]
        if labels.ndim != 1 or len(labels) != len(arrays[key]) or not np.issubdtype(labels.dtype, np.integer) \
                or (labels.size and (labels.min() < 0 or labels.max() >= classes)):
            raise EdgecnnError(f"{path}: '{label_key}' must be {len(arrays[key])} integer labels in 0..{classes - 1}")
        sets.calibration_labels = labels
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise EdgecnnError(f"calibration data {path} must hold both 'x_test' and 'y_test' or neither")
    if "x_test" in arrays:
        x_test, y_test = arrays["x_test"], arrays["y_test"]
        _check_images(x_test, input_shape, f"{path}: array 'x_test'")
        if y_test.ndim != 1 or len(y_test) != len(x_test) or not np.issubdtype(y_test.dtype, np.integer):
            raise EdgecnnError(f"{path}: 'y_test' must be {len(x_test)} integer labels, got {y_test.dtype} {y_test.shape}")
        if y_test.size and (y_test.min() < 0 or y_test.max() >= classes):
            raise EdgecnnError(f"{path}: 'y_test' holds labels outside 0..{classes - 1}")
        sets.x_test, sets.y_test, sets.test_source = x_test, y_test.astype(np.uint8), f"{path} ('x_test', 'y_test')"
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.ndim != 1 or len(names) != classes or names.dtype.kind != "U":
            raise EdgecnnError(f"{path}: 'class_names' must be {classes} strings, got {names.dtype} {names.shape}")
        sets.class_names = [str(n) for n in names]
    return sets


def _check_images(x: np.ndarray, input_shape: tuple[int, ...], what: str) -> None:
    """The whole array must be model input: shape, dtype and value range (to_model_input checks all three)."""
    try:
        to_model_input(x, input_shape)
    except ValueError as exc:
        raise EdgecnnError(f"{what}: {exc}") from None
