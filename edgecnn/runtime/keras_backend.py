"""Keras backend: the source model itself, for comparison and for machines that train.

This is the only backend that imports TensorFlow, and only when a ``.keras``
file is loaded (``tfquiet`` names the ``train`` extra when it is missing).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import tfquiet
from ..model import detected_input_range, load_model, model_io
from .base import Backend, check_threads, image_input_shape


class KerasBackend(Backend):
    name = "keras"

    def __init__(self, path: Path, *, threads: int | None = None, providers: Sequence[str] | None = None) -> None:
        if providers:
            raise ValueError("providers apply to ONNX models only")
        check_threads(threads)
        tf = tfquiet.tensorflow()
        if threads is not None:
            # TensorFlow fixes its thread pools when it first runs an op; later requests cannot apply.
            with contextlib.suppress(RuntimeError):
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
        model = load_model(path)
        shape, classes = model_io(model, path)
        self.path = path
        self.input_shape = image_input_shape(path, shape, "input")
        self.num_classes = classes
        self.input_dtype = self.output_dtype = np.dtype(np.float32)
        self.metadata = {}
        self.precision = str(model.compute_dtype)  # "float32", or "float16"/"bfloat16" under a mixed policy
        self.model = model
        self.own_input_range = detected_input_range(model)
        # One traced graph for every batch size: faster than eager calls, and safe to call from many threads.
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32, name="input")
        self._call = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def run_native(self, x: np.ndarray) -> np.ndarray:
        return self._call(x).numpy()
