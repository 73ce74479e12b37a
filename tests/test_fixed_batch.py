"""`export --batch 1`: static batch-1 files for runtimes that cannot resize; the default stays dynamic."""
from __future__ import annotations

import numpy as np
import pytest

from edgecnn.bundle import read_manifest
from edgecnn.datasets.fashion_mnist import load_dataset
from edgecnn.errors import EdgecnnError
from edgecnn.export import export_model
from edgecnn.runtime import Predictor
from edgecnn.verify.compat import check_compatibility


@pytest.fixture(scope="module")
def batch_one(tiny_bundle, tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch1")
    export_model(tiny_bundle / "model.keras", ("tflite", "tflite-int8", "onnx", "onnx-int8", "onnx-ort"), out,
                 calibration_samples=20, data=tiny_data, batch=1)
    return out


def test_files_have_a_static_batch_of_one_and_predict_like_the_dynamic_ones(batch_one, tiny_bundle, tiny_data):
    manifest, dynamic = read_manifest(batch_one), read_manifest(tiny_bundle)
    x = load_dataset(tiny_data).x_test[:7]
    for name, entry in manifest["exports"].items():
        assert entry["inputs"][0]["shape"] == [1, 28, 28, 1] and entry["outputs"][0]["shape"] == [1, 10], name
        assert dynamic["exports"][name]["inputs"][0]["shape"][0] is None, name
        predictor = Predictor.load(batch_one / entry["file"])
        probs = predictor.predict(x)  # 7 images through a batch-1 model: one call each
        assert probs.shape == (7, 10) and predictor.runtime.max_batch == 1, name
        if entry["precision"] == "float32":
            np.testing.assert_allclose(probs, Predictor.load(tiny_bundle / entry["file"]).predict(x), atol=1e-6)


def test_delegates_take_the_whole_graph_at_either_batch(batch_one, tiny_bundle):
    """XNNPACK takes the whole TFLite graph with a fixed or a dynamic batch (see edgecnn.batch_free); NNAPI, which
    needs fixed shapes, takes the fixed-batch ONNX file only."""
    fixed, dynamic = check_compatibility(batch_one / "model_fp32.tflite"), check_compatibility(tiny_bundle / "model_fp32.tflite")
    assert fixed.details["xnnpack"]["whole_graph"] and dynamic.details["xnnpack"]["whole_graph"]
    nnapi = check_compatibility(batch_one / "model_fp32.onnx").details["partitions"]["NNAPI"]
    assert nnapi["supported_nodes"] == nnapi["nodes"] and nnapi["partitions"] == 1 and nnapi["suitability"] == "YES"
    assert check_compatibility(tiny_bundle / "model_fp32.onnx").details["partitions"]["NNAPI"]["suitability"] == "NO"


def test_other_fixed_batches_are_refused(tiny_bundle, tmp_path):
    with pytest.raises(EdgecnnError, match="--batch must be 1"):
        export_model(tiny_bundle / "model.keras", ("onnx",), tmp_path, batch=4)
    assert not (tmp_path / "model_fp32.onnx").exists()
