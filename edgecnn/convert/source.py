"""What every exporter reads: the loaded Keras model, its serving function, its data and its preprocessing.

One :class:`ExportSource` is built per ``export_model`` call and shared by the
formats, so the model is loaded once, the TensorFlow function traced once, and
TFLite int8 and ONNX int8 are calibrated on the very same images.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import tfquiet
from ..batch_free import batch_free_reshapes
from ..datasets import Dataset
from ..datasets.splits import calibration_indices, held_out_indices
from ..errors import EdgecnnError
from ..preprocess import to_model_input

if TYPE_CHECKING:
    from ..progress import Progress

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
CALIBRATION_SEED = 0
#: Validation images for choosing mixed precision (the rest of the calibration pool, at most this many).
VALIDATION_IMAGES = 2000


@dataclass
class ExportSource:
    """The model being exported and everything derived from it, computed at most once."""

    model: Any
    model_path: Path
    sha256: str
    input_shape: tuple[int, int, int]
    classes: int
    #: The labelled images: calibration and validation come from its training split, the reference from its test split.
    data: Dataset | None
    #: How an image becomes this model's input (see :mod:`edgecnn.preprocess`); decided once, recorded everywhere.
    preprocessing: dict[str, Any]
    calibration_samples: int = 500
    opset: int = 17
    batch: int | None = None  # None: a dynamic batch; 1: a static batch-1 signature for runtimes that cannot resize
    #: Points of validation accuracy int8 may lose: mixed precision keeps layers float to stay within it
    #: (None: every layer int8, as the converter does on its own).
    max_accuracy_drop: float | None = None
    #: Whether mixed precision times each layer (a layer slower in int8 stays float). Off: the choice rests on
    #: accuracy alone, the same on every machine.
    measure_latency: bool = True
    #: Hears each layer mixed precision measures (see :data:`edgecnn.quantize.Progress`): minutes on a real network.
    on_progress: Progress | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        if self.data is not None:
            return list(self.data.names(self.classes))
        return [str(i) for i in range(self.classes)]

    @property
    def has_labels(self) -> bool:
        """Whether the validation images are labelled: mixed precision's budget is then accuracy, else agreement."""
        if self.data is None:
            return False
        return self.data.y_val is not None if self.data.x_val is not None else self.data.y_train is not None

    def model_input(self, x: np.ndarray) -> np.ndarray:
        """Pixels (uint8 or [0, 1] floats) as float32 in the model's input range."""
        return to_model_input(x, self.input_shape, self.preprocessing["input_range"])

    def calibration(self) -> np.ndarray:
        """``calibration_samples`` training images as float32 model input, drawn with a fixed seed (cached)."""
        if "calibration" not in self.cache:
            if self.data is None:
                raise EdgecnnError(f"int8 export of {self.model_path} needs calibration images: pass --data PATH "
                                   "(class folders, a .npz or the Fashion-MNIST IDX folder)")
            self.cache["calibration"] = self.model_input(self.data.x_train[self._calibration_indices()])
        return self.cache["calibration"]

    def _calibration_indices(self) -> np.ndarray:
        """At most half of a small training split calibrates: the other half is left to validate mixed precision."""
        total = len(self.data.x_train)
        return calibration_indices(total, min(self.calibration_samples, max(1, total // 2)), seed=CALIBRATION_SEED)

    def _validation_indices(self) -> np.ndarray:
        return held_out_indices(len(self.data.x_train), self._calibration_indices(), VALIDATION_IMAGES)

    def validation(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Images that are neither calibration nor test images: float32 model input, and labels (None: unlabelled).

        The data's own validation split when it has one, else training images
        not drawn for calibration. The test set stays untouched for verify; a
        budget met on these images is then checked independently there.
        """
        if self.data is None:
            raise EdgecnnError(f"choosing mixed precision for {self.model_path} needs validation images: pass --data")
        labels = (lambda y: None if y is None else np.asarray(y, dtype=np.int64))
        if self.data.x_val is not None:
            return self.model_input(self.data.x_val), labels(self.data.y_val)
        rest = self._validation_indices()
        if len(rest) == 0:
            raise EdgecnnError(f"all {len(self.data.x_train)} training images of {self.data.source} calibrate the "
                               "model: none is left for validation (lower --calibration-samples)")
        return (self.model_input(self.data.x_train[rest]),
                labels(None if self.data.y_train is None else self.data.y_train[rest]))

    def validation_source(self) -> str:
        unlabelled = "" if self.has_labels else " (unlabelled)"
        if self.data.x_val is not None:
            return f"{len(self.data.x_val)} validation images of {self.data.source}{unlabelled}"
        return (f"{len(self._validation_indices())} training images of {self.data.source}{unlabelled}, "
                "not among the calibration images")

    def calibration_info(self) -> dict:
        return {"images": int(len(self.calibration())), "seed": CALIBRATION_SEED,
                "source": f"training images of {self.data.source}"}

    def serving_function(self):
        """A ``tf.function`` over the model (batch: dynamic, or ``batch``): input ``input``, output ``probabilities``."""
        if "serving" not in self.cache:
            tf = tfquiet.tensorflow()
            model = self.model

            @tf.function(input_signature=[tf.TensorSpec((self.batch, *self.input_shape), tf.float32, name=INPUT_NAME)])
            def serve(x):
                return {OUTPUT_NAME: model(x, training=False)}

            with batch_free_reshapes():  # traced now, once: every converter reads this concrete function
                serve.get_concrete_function()
            self.cache["serving"] = serve
        return self.cache["serving"]
