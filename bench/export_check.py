"""Check an exported bundle against its Keras reference, with onnxruntime and LiteRT directly (no TensorFlow).

Usage: python bench/export_check.py [BUNDLE]   (default models/fashion-cnn)

For every export in manifest.json: sha256 matches, top-1 agreement with the Keras
probabilities on the reference test set, max |prob diff|, accuracy; ONNX passes the
checker; int8 TFLite tensors are int8; p50 latency at batch 1 of onnx-int8 vs onnx.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from ai_edge_litert.interpreter import Interpreter

from edgecnn.bundle import read_manifest
from edgecnn.datasets import load_dataset
from edgecnn.preprocess import to_model_input
from edgecnn.fileio import sha256_file
from edgecnn.versions import machine


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def run_tflite(path: Path, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], [batch, *x.shape[1:]])
    interpreter.allocate_tensors()
    scale, zero = inp["quantization"]
    o_scale, o_zero = out["quantization"]
    parts = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        if inp["dtype"] == np.int8:
            chunk = np.clip(np.round(chunk / scale) + zero, -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], chunk)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        parts.append((y.astype(np.float32) - o_zero) * o_scale if out["dtype"] == np.int8 else y.copy())
    return np.concatenate(parts)


def p50_us(path: Path, x: np.ndarray, threads: int, runs: int = 2000) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x[:1]}
    for _ in range(200):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e6)


def main(folder: Path) -> int:
    import onnx

    manifest = read_manifest(folder)
    probs = np.load(folder / manifest["reference"]["probs_file"])
    labels = np.load(folder / manifest["reference"]["labels_file"])
    x = to_model_input(load_dataset().x_test, tuple(manifest["model"]["input_shape"]))
    keras_top1 = probs.argmax(1)
    keras_acc = float(np.mean(keras_top1 == labels))
    results, ok = {}, True
    for name, entry in manifest["exports"].items():
        path = folder / entry["file"]
        row = {"sha256_ok": sha256_file(path) == entry["sha256"], "bytes": path.stat().st_size}
        if entry["runtime"] == "onnxruntime":
            onnx.checker.check_model(onnx.load(str(path)), full_check=True)
            row["checker_ok"] = True
            got = run_onnx(path, x)
        else:
            got = run_tflite(path, x)
            interpreter = Interpreter(model_path=str(path))
            row["io_dtypes"] = [np.dtype(d["dtype"]).name for d in
                                interpreter.get_input_details() + interpreter.get_output_details()]
        row["agreement"] = float(np.mean(got.argmax(1) == keras_top1))
        row["max_abs_diff"] = float(np.abs(got - probs).max())
        row["accuracy"] = float(np.mean(got.argmax(1) == labels))
        row["accuracy_drop_points"] = round(100 * (keras_acc - row["accuracy"]), 3)
        if entry["precision"] == "float32":
            passed = row["agreement"] >= 0.999 and row["max_abs_diff"] <= 1e-4
        elif entry["precision"] == "int8":
            passed = row["agreement"] >= 0.985 and row["accuracy_drop_points"] <= 1.0
            if entry["runtime"] == "litert":
                passed = passed and row["io_dtypes"] == ["int8", "int8"]
        else:
            passed = True
        row["passed"] = passed and row["sha256_ok"]
        ok = ok and row["passed"]
        results[name] = row
    latency = {}
    if {"onnx", "onnx-int8"} <= set(manifest["exports"]):
        for threads in (1, 0):
            fp32 = p50_us(folder / manifest["exports"]["onnx"]["file"], x, threads)
            int8 = p50_us(folder / manifest["exports"]["onnx-int8"]["file"], x, threads)
            latency["single_thread" if threads == 1 else "default_threads"] = {
                "onnx_p50_us": round(fp32, 1), "onnx_int8_p50_us": round(int8, 1), "ratio": round(int8 / fp32, 3)}
    print(json.dumps({"keras_accuracy": keras_acc, "exports": results, "latency_batch1": latency,
                      "machine": {k: v for k, v in machine().items() if k != "packages"}}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("models/fashion-cnn")))
