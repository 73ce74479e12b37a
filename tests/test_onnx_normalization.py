"""ONNX export of models with a Keras ``Normalization`` layer, as ``keras.applications`` build them.

``Normalization`` keeps its mean and variance as plain tensors, not variables,
so the serving function captures them; tf2onnx's ``from_function`` made those
captures graph inputs without a value and the export failed with a KeyError
(``.../normalization_1/Sub/y:0``). ConvNeXt also needs the two things its
blocks add: a grouped (depthwise) ``Conv2D``, which Keras runs in an XLA-compiled
function on CPU, and the exact GELU (TF's ``Erfc``, which ONNX lacks). The tiny
models here carry all three; the full applications run under ``e2e``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

SIZE, CLASSES = 32, 3
#: Max abs difference of probabilities allowed between Keras and the float32 ONNX file.
TOLERANCE = 1e-4
MEAN, VARIANCE = [123.7, 116.3, 103.5], [58.4 ** 2, 57.1 ** 2, 57.4 ** 2]


def images(n: int, seed: int) -> np.ndarray:
    """Random float32 pixels in 0-255 (the range the Normalization layers expect)."""
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype(np.float32)


def confident(model):
    """Scale the last Dense layer's kernel so probabilities are far from uniform: a wrong graph shows in them."""
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel * 20, bias])
    return model


def sequential_fixed(keras):
    """Normalization built from a given mean and variance, first layer of a Sequential model."""
    layers = keras.layers
    return confident(keras.Sequential([
        keras.Input((SIZE, SIZE, 3)), layers.Normalization(mean=MEAN, variance=VARIANCE),
        layers.Conv2D(4, 3, strides=2), layers.GlobalAveragePooling2D(), layers.Dense(CLASSES, activation="softmax")]))


def sequential_adapted(keras):
    """Normalization whose statistics come from ``adapt`` (its tensors are recomputed from variables)."""
    layers = keras.layers
    norm = layers.Normalization()
    norm.adapt(images(16, seed=5))
    return confident(keras.Sequential([
        keras.Input((SIZE, SIZE, 3)), norm, layers.Conv2D(4, 3, strides=2), layers.GlobalAveragePooling2D(),
        layers.Dense(CLASSES, activation="softmax")]))


def nested_like_applications(keras):
    """A wrapper around an inner functional model that starts with Rescaling and Normalization (EfficientNetV2's
    preprocessing), then a ConvNeXt-style block: depthwise ``Conv2D(groups=channels)`` and exact GELU."""
    layers = keras.layers
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Normalization(mean=[m / 255 for m in MEAN], variance=[v / 255 ** 2 for v in VARIANCE], axis=-1)(x)
    x = layers.Conv2D(8, 3, strides=2, name="stem")(x)
    x = layers.Conv2D(8, 3, padding="same", groups=8, name="depthwise")(x)
    x = layers.Activation("gelu", name="gelu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    inner = keras.Model(inputs, layers.Dense(CLASSES, activation="softmax", name="head")(x), name="inner")
    confident(inner)
    outer = keras.Input((SIZE, SIZE, 3))
    return keras.Model(outer, inner(outer), name="wrapper")


def write_data(folder: Path, classes: int) -> Path:
    """A few labelled images (training and test split) in a .npz, as ``--data`` takes them."""
    rng = np.random.default_rng(0)
    npz = folder / "images.npz"
    np.savez(npz, x=rng.integers(0, 256, (16, SIZE, SIZE, 3), dtype=np.uint8), y=rng.integers(0, classes, 16),
             x_test=rng.integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8), y_test=rng.integers(0, classes, 8))
    return npz


def export_onnx(model, folder: Path):
    """Save ``model``, export it to ``onnx`` alone and return the export result."""
    from edgecnn.export import export_model

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.keras"
    model.save(path)
    return export_model(path, ("onnx",), folder / "out", data=write_data(folder, model.output_shape[-1]))


def max_diff_to_keras(model, onnx_path: Path, x: np.ndarray) -> float:
    """Max abs difference between the ONNX file's probabilities and Keras's on ``x``; the file takes only the image."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    got = session.run(None, {"input": x})[0]
    want = np.asarray(model.predict(x, verbose=0))
    assert got.shape == want.shape
    return float(np.abs(got - want).max())


@pytest.mark.parametrize("build", [sequential_fixed, sequential_adapted, nested_like_applications],
                         ids=lambda build: build.__name__)
def test_onnx_matches_keras_with_normalization(build: Callable, tmp_path: Path):
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    keras.utils.set_random_seed(0)
    model = build(keras)
    result = export_onnx(model, tmp_path)
    assert result.failed == {}
    assert max_diff_to_keras(model, result.entries[0].file, images(8, seed=1)) <= TOLERANCE


def test_constants_left_as_graph_inputs_fail_in_one_line(tmp_path: Path, monkeypatch):
    """Should a converter leave model constants as graph inputs again, the onnx format fails with one line that
    says so (the other formats are unaffected), not with a KeyError from the dimension update."""
    from edgecnn import tfquiet
    from edgecnn.convert import onnx as onnx_convert

    keras = tfquiet.keras()
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Normalization(mean=MEAN, variance=VARIANCE),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Softmax()])  # no variables at all

    def unfrozen(source):
        """The graph as tf2onnx's ``from_function`` saw it: captured constants are placeholders it takes as inputs."""
        tf = tfquiet.tensorflow()
        concrete = source.serving_function().get_concrete_function()
        inputs = [t.name for t in concrete.inputs if t.dtype != tf.dtypes.resource]
        return concrete.graph.as_graph_def(add_shapes=True), inputs, [t.name for t in concrete.outputs]

    monkeypatch.setattr(onnx_convert, "frozen_serving_graph", unfrozen)
    result = export_onnx(model, tmp_path)
    message = result.failed["onnx"]
    assert "\n" not in message
    assert "tf2onnx left 2 model constants as graph inputs (first: " in message
    assert "normalization" in message and "KeyError" not in message


@pytest.mark.e2e
@pytest.mark.parametrize("application", ["EfficientNetV2B0", "ConvNeXtTiny"])
def test_applications_with_normalization_export_to_onnx(application: str, tmp_path: Path):
    """The two applications whose export failed: untrained (weights=None), 32x32, 4 classes."""
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    keras.utils.set_random_seed(0)
    options = {"include_preprocessing": True} if application.startswith("EfficientNet") else {}
    model = getattr(keras.applications, application)(input_shape=(SIZE, SIZE, 3), weights=None, classes=4, **options)
    result = export_onnx(model, tmp_path)
    assert result.failed == {}
    assert max_diff_to_keras(model, result.entries[0].file, images(8, seed=1)) <= TOLERANCE
