"""tflite-int16x8 of a model with an op the converter cannot quantize to 16x8 (HARD_SWISH, as in MobileNetV3).

The strict conversion (every op int16x8) refuses such a model; the export then keeps
those ops float (the converter's float fallback) and records them in the manifest
entry, op by op with the layers and the reason, never silently. A model the strict
conversion takes still gets a file with no float op and no such record.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecnn.bundle import MANIFEST_FILE
from edgecnn.export import FORMATS, export_model, tflite
from edgecnn.export.float_ops import refused_ops

SHAPE, CLASSES = (16, 16, 3), 3
FORMAT = "tflite-int16x8"


def class_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images whose class is a bright colour channel in one horizontal band: easy to learn, varied."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    x = rng.integers(0, 90, (n, *SHAPE))
    for image, label in zip(x, y):
        image[5 * label:5 * label + 6, :, label] += 150
    return x.astype(np.uint8), y.astype(np.int64)


def tiny_model(activation: str):
    """Rescaling (reads 0-255 pixels) + Conv2D + ``activation`` + pooling + softmax, briefly trained on
    :func:`class_images` so its outputs are confident and differ between images."""
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(8, 3, name="conv"), keras.layers.Activation(activation, name="act"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(CLASSES, activation="softmax", name="head")])
    x, y = class_images(96, seed=1)
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    model.fit(x.astype(np.float32), y, epochs=20, batch_size=32, verbose=0)
    return model


def export(folder: Path, activation: str) -> tuple[object, dict, Path]:
    """The trained tiny model exported to tflite-int16x8 with a .npz of labelled images: model, entry, file."""
    from edgecnn.model import save_model

    folder.mkdir(parents=True)
    model = tiny_model(activation)
    path = save_model(model, folder / "model.keras")
    x, y = class_images(64, seed=2)
    x_test, y_test = class_images(40, seed=3)
    npz = folder / "images.npz"
    np.savez(npz, x=x, y=y, x_test=x_test, y_test=y_test, class_names=np.array(["a", "b", "c"]))
    result = export_model(path, (FORMAT,), folder / "out", data=npz, calibration_samples=32)
    assert result.failed == {}, result.failed
    entry = json.loads((folder / "out" / MANIFEST_FILE).read_text())["exports"][FORMAT]
    return model, entry, folder / "out" / FORMATS[FORMAT].file


@pytest.fixture(scope="module")
def hard_swish(tmp_path_factory) -> tuple[object, dict, Path]:
    return export(tmp_path_factory.mktemp("int16x8") / "hard_swish", "hard_swish")


@pytest.fixture(scope="module")
def relu(tmp_path_factory) -> tuple[object, dict, Path]:
    return export(tmp_path_factory.mktemp("int16x8") / "relu", "relu")


def file_ops(path: Path) -> list[tuple[str, set[str]]]:
    """Each op of the file with the dtypes of its operands and results (no delegate: the file's own ops)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return [(op["op_name"], {np.dtype(t).name for t in (*op["operand_types"], *op["result_types"])})
            for op in interpreter._get_ops_details()]  # noqa: SLF001


def test_hard_swish_stays_float_and_the_manifest_says_so(hard_swish):
    _, entry, path = hard_swish
    assert path.is_file() and entry["file"] == path.name and entry["precision"] == "int16x8"
    assert entry["float_ops"] == [{"op": "HARD_SWISH", "count": 1, "precision": "float32", "layers": ["act"],
                                   "reason": "the converter cannot quantize HARD_SWISH to 16x8"}]
    assert "HARD_SWISH" in entry["note"] and "float" in entry["note"]
    ops = file_ops(path)
    assert [name for name, types in ops if name not in ("QUANTIZE", "DEQUANTIZE") and "float32" in types] == ["HARD_SWISH"]
    assert {"CONV_2D", "FULLY_CONNECTED"} <= {name for name, types in ops if "int16" in types}  # the rest int16x8


def test_fallback_file_predicts_like_keras(hard_swish):
    from edgecnn.runtime import Predictor

    model, _, path = hard_swish
    x, _ = class_images(40, seed=3)
    keras_probs = np.asarray(model.predict(x.astype(np.float32), verbose=0))
    probs = Predictor.load(path).predict(x)
    assert len(set(keras_probs.argmax(1))) == CLASSES  # outputs that move between images: the check means something
    assert np.array_equal(probs.argmax(1), keras_probs.argmax(1))
    assert np.abs(probs - keras_probs).max() < 0.01  # 16-bit activations: ~1e-4 here


def test_model_the_strict_conversion_takes_has_no_float_op(relu):
    _, entry, path = relu
    assert path.is_file()
    assert "float_ops" not in entry and "note" not in entry
    assert not [name for name, types in file_ops(path) if name not in ("QUANTIZE", "DEQUANTIZE") and "float32" in types]


def test_only_a_refused_op_is_retried_and_a_failed_fallback_propagates(monkeypatch, tmp_path):
    refusal = RuntimeError("Quantization to 16x8-bit not yet supported for op: 'HARD_SWISH'.\n")
    calls: list[object] = []

    def convert(*errors: Exception):
        def fake(source, path, card, configure=None):
            calls.append(configure)
            raise errors[len(calls) - 1]
        return fake

    monkeypatch.setattr(tflite, "_convert", convert(ValueError("something else")))
    with pytest.raises(ValueError, match="something else"):
        tflite.export_int16x8(object(), tmp_path / "m.tflite", {})
    assert len(calls) == 1  # not a refusal: today's failure, no fallback attempted

    calls.clear()
    monkeypatch.setattr(tflite, "_convert", convert(refusal, OSError("fallback broke")))
    with pytest.raises(OSError, match="fallback broke"):
        tflite.export_int16x8(object(), tmp_path / "m.tflite", {})
    assert len(calls) == 2


def test_refused_ops_are_read_from_the_converter_message():
    assert refused_ops(RuntimeError("Quantization to 16x8-bit not yet supported for op: 'HARD_SWISH'.")) == {
        "HARD_SWISH": "the converter cannot quantize HARD_SWISH to 16x8"}
    assert refused_ops(RuntimeError("Quantization not yet supported for op: 'CUSTOM_X'.")) == {
        "CUSTOM_X": "the converter cannot quantize CUSTOM_X at all"}
    assert refused_ops(RuntimeError("out of memory")) == {}
