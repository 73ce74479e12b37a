"""onnx-int8 of a model as users wrap one: ``Input -> Rescaling -> inner functional model``.

The inner model has what real classifiers have and a straight chain of layers
does not: a depthwise convolution, a residual Add, a squeeze-and-excitation
multiply and a concatenation. Each of those nodes reads a second tensor written
by an earlier layer, so a per-layer cut (SQNR, latency) must take every tensor
its layer reads as an input, else the cut reaches back to the model's input and
onnxruntime rejects it (the export failed with "Node input 'input' is not a
graph input"). The layer names must be the nested model's Keras layers, not the
inner model's scope repeated for each.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SIZE, CLASSES = 16, 4
#: The inner model's layers that become weighted ONNX nodes (tf2onnx may order the parallel branches either way).
WEIGHTED = ["stem", "dw", "project", "squeeze", "excite", "branch", "head"]


def stripe_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB images, noise with a bright vertical stripe whose position is the class (easy to learn)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    x = rng.integers(0, 80, (n, SIZE, SIZE, 3), dtype=np.uint8)
    width = SIZE // CLASSES
    for image, label in zip(x, y):
        image[:, label * width:(label + 1) * width] += 120
    return x, y.astype(np.uint8)


def build_nested(keras):
    """Input -> Rescaling -> inner(conv, depthwise, residual add, SE multiply, concat, GAP, dense softmax)."""
    layers = keras.layers
    inputs = keras.Input((SIZE, SIZE, 3))
    a = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inputs)
    d = layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(a)
    p = layers.Conv2D(8, 1, use_bias=False, name="project")(d)  # each layer a different weight count
    r = layers.Add(name="residual")([a, p])
    s = layers.GlobalAveragePooling2D(keepdims=True, name="se_pool")(r)
    s = layers.Conv2D(4, 1, activation="relu", name="squeeze")(s)
    s = layers.Conv2D(8, 1, activation="sigmoid", name="excite")(s)
    e = layers.Multiply(name="se_scale")([r, s])
    b = layers.Conv2D(6, 1, activation="relu", name="branch")(r)
    c = layers.Concatenate(name="concat")([e, b])
    g = layers.GlobalAveragePooling2D(name="pool")(c)
    inner = keras.Model(inputs, layers.Dense(CLASSES, activation="softmax", name="head")(g), name="inner")
    x = keras.Input((SIZE, SIZE, 3))
    return keras.Model(x, inner(layers.Rescaling(1 / 127.5, offset=-1)(x)), name="wrapper")


@pytest.fixture(scope="module")
def nested(tmp_path_factory) -> tuple[Path, Path]:
    """The trained nested model's file and its labelled .npz (training and test images)."""
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("nested")
    x, y = stripe_images(400, seed=0)
    x_test, y_test = stripe_images(100, seed=1)
    model = build_nested(keras)
    model.compile("adam", "sparse_categorical_crossentropy")
    with tfquiet.quiet():
        model.fit(x.astype(np.float32), y, epochs=4, batch_size=32, verbose=0)
    path = folder / "nested.keras"
    model.save(path)
    npz = folder / "images.npz"
    np.savez(npz, x=x, y=y, x_test=x_test, y_test=y_test)
    return path, npz


@pytest.fixture(scope="module")
def exported(nested, tmp_path_factory):
    """onnx-int8 of the nested model with the default accuracy budget: every layer cut out, measured, timed."""
    from edgecnn.export import export_model

    path, npz = nested
    out = tmp_path_factory.mktemp("nested-out")
    return export_model(path, ("onnx-int8",), out, data=npz, calibration_samples=200), out, path


def test_nested_model_onnx_int8_is_written_runs_and_agrees_with_keras(nested, exported):
    import onnxruntime as ort

    from edgecnn import tfquiet

    result, out, _ = exported
    assert not result.failed, result.failed
    file = out / "model_int8.onnx"
    assert file.is_file()
    x_test = np.load(nested[1])["x_test"].astype(np.float32)
    session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    int8 = session.run(None, {session.get_inputs()[0].name: x_test})[0]
    with tfquiet.quiet():
        keras_probs = tfquiet.keras().models.load_model(nested[0]).predict(x_test, verbose=0)
    agreement = float(np.mean(int8.argmax(1) == keras_probs.argmax(1)))
    print(f"top-1 agreement int8 vs Keras: {agreement:.3f} on {len(x_test)} test images")
    assert int8.shape == (len(x_test), CLASSES) and np.allclose(int8.sum(1), 1, atol=1e-2)
    assert agreement >= 0.9


def test_nested_layers_are_named_after_the_inner_keras_layers_and_each_is_measured(exported):
    from edgecnn import tfquiet
    from edgecnn.bundle import load_manifest

    _, out, path = exported
    record = load_manifest(out).exports["onnx-int8"]
    assert sorted(layer.name for layer in record.layers) == sorted(WEIGHTED)
    inner = tfquiet.keras().models.load_model(path).get_layer("inner")
    for layer in record.layers:  # each name on its own node: its weight count is that Keras layer's
        keras_layer = inner.get_layer(layer.name)
        count = keras_layer.kernel.size if layer.op == "MatMul" else keras_layer.count_params()  # MatMul: no bias
        assert layer.weight_bytes_float32 == 4 * count, layer.name
    assert all(layer.sqnr_db is not None and np.isfinite(layer.sqnr_db) for layer in record.layers)
    assert all(layer.float32_s > 0 and layer.int8_s > 0 for layer in record.layers)
