"""LiteRT (TFLite) backend: one interpreter per thread, because an interpreter is not thread-safe.

Every thread that calls :meth:`LiteRTBackend.run_native` gets its own interpreter
built from the same in-memory model, so concurrent calls never share tensors
and never wait on a lock. A batch of a size the interpreter was not allocated
for resizes that thread's interpreter first (a fraction of a millisecond; the
outputs are bit-identical to running the images one at a time).
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import tfquiet
from ..errors import ModelFileError, first_line
from ..fileio import read_model_bytes
from ..model_card import tflite_metadata
from .base import Backend, Quantization, check_threads, image_input_shape

#: Batch of one resized interpreter call: larger batches barely raise throughput
#: and make ``allocate_tensors`` slower (14 ms at 1024 for the int8 reference).
LITERT_MAX_BATCH = 64

_announce_lock = threading.Lock()
_announced = False  # LiteRT prints "Created TensorFlow Lite XNNPACK delegate" once per process


class LiteRTBackend(Backend):
    name = "litert"
    max_batch = LITERT_MAX_BATCH

    def __init__(self, path: Path, *, threads: int | None = None, providers: Sequence[str] | None = None) -> None:
        if providers:
            raise ValueError("providers apply to ONNX models only; LiteRT runs on the CPU")
        check_threads(threads)
        self.path = path
        self._content = read_model_bytes(path, "TFLite (.tflite)")
        self._threads = threads
        self._local = threading.local()
        interpreter = self._attach()
        try:
            inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
            tensor_dtypes = {np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
            quantizes = any(op["op_name"] == "QUANTIZE" for op in interpreter._get_ops_details())  # noqa: SLF001
        except ValueError as exc:  # e.g. undecodable tensor names in a damaged file
            raise ModelFileError(f"cannot read the tensors of TFLite model {path} (corrupt?): {exc}") from None
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(f"{path}: expected a single-input, single-output classifier, "
                                 f"got {len(inputs)} inputs and {len(outputs)} outputs")
        inp, out = inputs[0], outputs[0]
        if len(inp["shape"]) != 4 or len(out["shape"]) != 2:
            raise ModelFileError(f"{path}: expected input (N, H, W, C) and output (N, classes), "
                                 f"got {tuple(inp['shape'])} and {tuple(out['shape'])}")
        self.input_shape = image_input_shape(path, tuple(int(d) for d in inp["shape"][1:]), "input")
        self.num_classes = int(out["shape"][1])
        self.input_dtype, self.output_dtype = np.dtype(inp["dtype"]), np.dtype(out["dtype"])
        self.input_quant, self.output_quant = _quantization(path, inp), _quantization(path, out)
        self.metadata = tflite_metadata(self._content, path)
        self.precision = _precision(self.input_dtype, tensor_dtypes, quantizes)
        self._input_index, self._output_index = inp["index"], out["index"]
        if int(inp["shape_signature"][0]) == 1:  # a static batch-1 signature (export --batch 1) cannot be resized
            self.max_batch = 1

    def _attach(self):
        """Create this thread's interpreter (kept in thread-local storage)."""
        global _announced
        from ai_edge_litert.interpreter import Interpreter

        with _announce_lock:
            failure = None
            with contextlib.nullcontext() if _announced else tfquiet.quiet():
                try:  # caught inside the quiet block: the error text says it all, the captured log adds nothing
                    interpreter = Interpreter(model_content=self._content, num_threads=self._threads)
                    interpreter.allocate_tensors()
                    batch = int(interpreter.get_input_details()[0]["shape"][0])
                    _announced = True
                except (ValueError, RuntimeError) as exc:
                    failure = exc
        if failure is not None:
            raise ModelFileError(f"cannot load TFLite model {self.path} (corrupt, truncated or not TFLite): "
                                 f"{first_line(failure)}") from None
        self._local.interpreter = interpreter
        self._local.batch = batch
        return interpreter

    def run_native(self, x: np.ndarray) -> np.ndarray:
        local = self._local
        try:
            interpreter = local.interpreter
        except AttributeError:
            interpreter = self._attach()
        if x.shape[0] != local.batch:
            interpreter.resize_tensor_input(self._input_index, x.shape)
            interpreter.allocate_tensors()
            local.batch = x.shape[0]
        interpreter.set_tensor(self._input_index, x)
        interpreter.invoke()
        return interpreter.get_tensor(self._output_index)


def _quantization(path: Path, detail: dict) -> Quantization | None:
    """The tensor's scale and zero point; an integer tensor without them cannot be fed or read."""
    if not np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        return None
    scale, zero_point = detail["quantization"]
    if not scale:
        raise ModelFileError(f"{path}: integer tensor '{detail['name']}' has no quantization scale")
    return Quantization(float(scale), int(zero_point))


def _precision(input_dtype: np.dtype, dtypes: set[np.dtype], quantizes: bool) -> str:
    """int8 (integer inputs, or float inputs quantized inside: mixed precision), int16x8 (16-bit activations),
    float16 (float16 weights), dynamic (int8 weights, float activations) or float32."""
    if np.dtype(np.int16) in dtypes:
        return "int16x8"
    if np.issubdtype(input_dtype, np.integer):
        return "int8" if input_dtype.itemsize == 1 else f"int{8 * input_dtype.itemsize}"
    if np.dtype(np.float16) in dtypes:
        return "float16"
    if quantizes:
        return "int8"
    return "dynamic" if np.dtype(np.int8) in dtypes else "float32"
