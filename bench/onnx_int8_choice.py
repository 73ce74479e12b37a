"""Why onnx-int8 is QDQ, uint8 activations, per-channel int8 weights and a float stem: time the alternatives.

Usage: python bench/onnx_int8_choice.py [BUNDLE]   (needs BUNDLE/model_fp32.onnx; default models/fashion-cnn)

Quantizes the bundle's float32 ONNX in each candidate configuration, calibrated
like the exporter (500 training images, seed 0), and prints p50 latency at batch 1
(single thread, interleaved rounds) and top-1 agreement with the float32 model.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from export_check import p50_us
from edgecnn.convert.onnx import apply_float_stem
from edgecnn.datasets import calibration_images, load_dataset
from edgecnn.preprocess import to_model_input
from edgecnn.versions import machine

CANDIDATES = {  # name: (format, activation type, per-channel, float stem)
    "QDQ u8/s8 per-channel, float stem (chosen)": (QuantFormat.QDQ, QuantType.QUInt8, True, True),
    "QDQ u8/s8 per-tensor": (QuantFormat.QDQ, QuantType.QUInt8, False),
    "QDQ u8/s8 per-channel": (QuantFormat.QDQ, QuantType.QUInt8, True),
    "QOperator u8/s8 per-tensor": (QuantFormat.QOperator, QuantType.QUInt8, False),
    "QOperator u8/s8 per-channel": (QuantFormat.QOperator, QuantType.QUInt8, True),
    "QOperator s8/s8 per-tensor": (QuantFormat.QOperator, QuantType.QInt8, False),
}


class Reader(CalibrationDataReader):
    def __init__(self, images: np.ndarray) -> None:
        self._batches = iter(images[i:i + 50] for i in range(0, len(images), 50))

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {"input": batch}


def main(folder: Path, rounds: int = 3) -> None:
    data = load_dataset()
    calibration = to_model_input(calibration_images(data.x_train, 500, seed=0))
    x = to_model_input(data.x_test)
    fp32 = folder / "model_fp32.onnx"
    reference = ort.InferenceSession(str(fp32)).run(None, {"input": x})[0].argmax(1)
    with tempfile.TemporaryDirectory() as work:
        prepared = Path(work) / "pre.onnx"
        quant_pre_process(str(fp32), str(prepared))
        paths = {"float32": fp32}
        for name, (fmt, activations, per_channel, *stem) in CANDIDATES.items():
            paths[name] = Path(work) / f"{len(paths)}.onnx"
            source = prepared
            exclude = []
            if stem:
                source = Path(shutil.copy(prepared, Path(work) / "stem.onnx"))
                exclude = apply_float_stem(source)
            quantize_static(str(source), str(paths[name]), Reader(calibration), quant_format=fmt, nodes_to_exclude=exclude,
                            activation_type=activations, weight_type=QuantType.QInt8, per_channel=per_channel)
        timings = {name: [] for name in paths}
        for _ in range(rounds):  # interleaved, so drift on a shared machine hits every candidate alike
            for name, path in paths.items():
                timings[name].append(p50_us(path, x, threads=1, runs=1000))
        rows = {}
        for name, path in paths.items():
            top1 = ort.InferenceSession(str(path)).run(None, {"input": x})[0].argmax(1)
            p50 = float(np.median(timings[name]))
            rows[name] = {"p50_us_batch1_1thread": round(p50, 1),
                          "ratio_to_float32": round(p50 / float(np.median(timings["float32"])), 3),
                          "agreement_with_float32": float(np.mean(top1 == reference)),
                          "accuracy": float(np.mean(top1 == data.y_test))}
    print(json.dumps({"candidates": rows, "machine": {k: v for k, v in machine().items() if k != "packages"}}, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("models/fashion-cnn"))
