"""Dynamic-batch files stay one delegate graph: Reshape and Flatten do not read the batch at run time.

Keras's own trace turns each into a SHAPE, STRIDED_SLICE, PACK chain that
XNNPACK leaves on the CPU, splitting the graph (``edgecnn.batch_free``); the
last test proves the check sees that split when the rewrite is off.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

from .architectures import CLASSES, SIZE
from .test_architectures import write_data


def _squeeze_excite_model():
    """Conv, a squeeze-and-excitation gate through a Reshape, Flatten, Dense: both reshapes Keras writes."""
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    layers = keras.layers
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(8, 3, strides=4, activation="relu")(layers.Rescaling(1 / 255)(inputs))
    gate = layers.Reshape((1, 1, 8))(layers.Dense(8, activation="sigmoid")(layers.GlobalAveragePooling2D()(x)))
    x = layers.Flatten()(layers.Multiply()([x, gate]))
    return keras.Model(inputs, layers.Dense(CLASSES, activation="softmax")(x))


def _export(root: Path) -> tuple[Path, object]:
    from edgecnn.export import export_model

    root.mkdir(parents=True, exist_ok=True)
    model = _squeeze_excite_model()
    model.save(root / "model.keras")
    export_model(root / "model.keras", ("tflite", "onnx"), root / "bundle", data=write_data(root / "data.npz", (SIZE, SIZE, 3)))
    return root / "bundle", model


def _tflite_ops(path: Path) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    return [op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, object]:
    return _export(tmp_path_factory.mktemp("batch-free"))


def test_tflite_is_one_xnnpack_partition(exported):
    from edgecnn.runtime.xnnpack import xnnpack_coverage

    folder, _ = exported
    assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & set(_tflite_ops(folder / "model_fp32.tflite"))
    xnnpack = xnnpack_coverage(folder / "model_fp32.tflite")
    assert xnnpack["whole_graph"], xnnpack


def test_onnx_reshapes_are_constant(exported):
    import onnx

    folder, _ = exported
    ops = {node.op_type for node in onnx.load(str(folder / "model_fp32.onnx")).graph.node}
    assert "Reshape" in ops and "Shape" not in ops, ops


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_any_batch_still_matches_keras(exported, fmt):
    from edgecnn.export import FORMATS
    from edgecnn.runtime import Predictor

    folder, model = exported
    pixels = np.random.default_rng(1).integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)
    got = Predictor.load(folder / FORMATS[fmt].file).predict(pixels)
    np.testing.assert_allclose(got, model.predict(pixels.astype(np.float32), verbose=0), atol=1e-5)


def test_the_check_sees_keras_own_reshapes(tmp_path, monkeypatch):
    from edgecnn.convert import source
    from edgecnn.runtime.xnnpack import xnnpack_coverage

    monkeypatch.setattr(source, "batch_free_reshapes", contextlib.nullcontext)
    folder, _ = _export(tmp_path)
    assert "SHAPE" in _tflite_ops(folder / "model_fp32.tflite")
    assert xnnpack_coverage(folder / "model_fp32.tflite")["partitions"] > 1
