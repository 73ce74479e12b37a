"""ONNX Runtime backend: one InferenceSession, shared by all threads (``run`` is thread-safe)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ModelFileError, first_line
from ..fileio import read_model_bytes
from .base import Backend, DEFAULT_MAX_BATCH, check_threads, image_input_shape

_INPUT_TYPES = {"tensor(float)": np.dtype(np.float32), "tensor(float16)": np.dtype(np.float16)}
#: Operators that only a quantized graph holds (QDQ, QOperator and dynamic quantization).
_QUANT_OPS = (b"QuantizeLinear", b"QLinear", b"MatMulInteger", b"ConvInteger")


class OnnxBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: Path, *, threads: int | None = None, providers: Sequence[str] | None = None) -> None:
        import onnxruntime as ort

        check_threads(threads)
        data = read_model_bytes(path, "ONNX (.onnx or .ort)")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initializers are not the user's concern
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(data, sess_options=options,
                                           providers=list(providers) if providers else ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelFileError(f"cannot load ONNX model {path} (corrupt, truncated or not ONNX): "
                                 f"{first_line(exc)}") from None
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(f"{path}: expected a single-input, single-output classifier, "
                                 f"got {len(inputs)} inputs and {len(outputs)} outputs")
        shape, out_shape = inputs[0].shape, outputs[0].shape
        if inputs[0].type not in _INPUT_TYPES:
            raise ModelFileError(f"{path}: input type {inputs[0].type} is not supported (expected float or float16)")
        if len(shape) != 4:
            raise ModelFileError(f"{path}: expected an image input (N, H, W, C), got {shape}")
        batch = shape[0]
        if isinstance(batch, int) and batch != 1:
            raise ModelFileError(f"{path}: the input has a fixed batch of {batch}; export it with a dynamic or batch-1 input")
        if len(out_shape) != 2 or not isinstance(out_shape[1], int):
            raise ModelFileError(f"{path}: expected an output (N, classes), got {out_shape}")
        self.path = path
        self.input_shape = image_input_shape(path, tuple(shape[1:]), "input")
        self.num_classes = int(out_shape[1])
        self.input_dtype = _INPUT_TYPES[inputs[0].type]
        self.output_dtype = _INPUT_TYPES.get(outputs[0].type, np.dtype(np.float32))
        self.max_batch = 1 if batch == 1 else DEFAULT_MAX_BATCH
        self.metadata = dict(session.get_modelmeta().custom_metadata_map)
        if any(op in data for op in _QUANT_OPS):
            self.precision = "int8"
        else:
            self.precision = "float16" if self.input_dtype == np.float16 else "float32"
        self.session = session
        self._input_name = inputs[0].name
        self._output_names = [outputs[0].name]

    def run_native(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(self._output_names, {self._input_name: x})[0]
