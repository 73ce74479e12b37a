"""ORT-format exports (ONNX Runtime Mobile): the files, the operators config, the Predictor and the verify gate."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edgecnn.bundle import read_manifest, update_manifest
from edgecnn.bundle.files import REQUIRED_OPERATORS_FILE
from edgecnn.datasets.fashion_mnist import load_dataset
from edgecnn.export.ort import parse_operators
from edgecnn.fileio import sha256_file
from edgecnn.runtime import Predictor
from edgecnn.verify import verify

PAIRS = {"onnx-ort": "onnx", "onnx-ort-int8": "onnx-int8"}


def test_ort_files_and_the_operators_config_are_written_and_recorded(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    config = tiny_bundle / REQUIRED_OPERATORS_FILE
    section = manifest["required_operators"]
    assert section["file"] == REQUIRED_OPERATORS_FILE and section["sha256"] == sha256_file(config)
    assert section["formats"] == list(PAIRS)
    in_file = parse_operators(config.read_text())
    assert in_file == section["operators"]
    for name in PAIRS:
        entry = manifest["exports"][name]
        assert (tiny_bundle / entry["file"]).read_bytes()[4:8] == b"ORTM"  # the ORT flatbuffer's identifier
        for key, ops in entry["required_operators"].items():
            assert set(ops) <= set(in_file[key]), (name, key)
    assert {"QLinearConv", "FusedConv"} <= set(in_file["com.microsoft;1"])  # int8 and float32 convolutions


def test_predictor_runs_ort_files_like_their_onnx_source(tiny_bundle, tiny_data):
    x = load_dataset(tiny_data).x_test[:100]
    manifest = read_manifest(tiny_bundle)
    for ort_name, onnx_name in PAIRS.items():
        ort_file = tiny_bundle / manifest["exports"][ort_name]["file"]
        predictor = Predictor.load(ort_file)
        source = Predictor.load(tiny_bundle / manifest["exports"][onnx_name]["file"])
        assert predictor.backend == "onnxruntime" and predictor.precision == manifest["exports"][ort_name]["precision"]
        assert predictor.classes == source.classes and predictor.preprocessing == source.preprocessing
        probs, expected = predictor.predict(x), source.predict(x)
        np.testing.assert_allclose(probs, expected, atol=1e-5 if onnx_name == "onnx" else 2e-2)
        assert np.mean(probs.argmax(1) == expected.argmax(1)) >= 0.97


def test_verify_gates_ort_files_by_their_precision(tiny_bundle, tiny_data, tmp_path):
    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "b"))
    report = verify([bundle / "model_fp32.ort"], data=tiny_data, progress=False)
    (row,) = report.rows
    assert row.passed and row.thresholds.atol == 1e-4 and row.comparison.max_abs_diff <= 1e-4
    # An int8 graph under the float32 file name (its sha256 recorded, so only its numbers can fail it)
    shutil.copyfile(bundle / "model_int8.ort", bundle / "model_fp32.ort")
    update_manifest(bundle, lambda m: m["exports"]["onnx-ort"].update(sha256=sha256_file(bundle / "model_fp32.ort")))
    (row,) = verify([bundle / "model_fp32.ort"], data=tiny_data, progress=False).rows
    assert not row.passed and any("max abs diff" in failure for failure in row.failures), row.failures
