"""The Keras model as a reference: its own preprocessing followed wherever its file lives; and one format's
failure costs no other.

A model with its preprocessing inside (``Rescaling(1/255)`` first: it reads
0..255 pixels) kept outside its bundle, as the README's own layout does
(``--model mine.keras --out bundle/``), must be run on 0..255 pixels by verify,
bench and predict alike: fed 0..1 it answers one class for everything.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import invoke

CLASSES = 3
SIZE = 12


def _rescaling_model(path: Path) -> Path:
    """Rescaling(1/255) first, then a conv whose answer depends on how bright each third of the image is."""
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.AveragePooling2D((SIZE, SIZE // CLASSES))(x)  # (1, 3, 3): mean brightness of each third
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((CLASSES * 3, CLASSES), dtype=np.float32)
    for c in range(CLASSES):
        kernel[c * 3:(c + 1) * 3, c] = 20.0  # the brightest third wins, confidently
    # the bias decides when the pixels are scaled twice (0..1 fed to Rescaling(1/255)): class 0, whatever the image
    model.layers[-1].set_weights([kernel, np.array([1.0, 0.0, 0.0], dtype=np.float32)])
    model.save(path)
    return path


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, (n, SIZE, SIZE, 3), dtype=np.uint8)
    y = rng.integers(0, CLASSES, n)
    for image, label in zip(x, y):
        image[:, label * SIZE // CLASSES:(label + 1) * SIZE // CLASSES] += 150
    return x, y


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(mine.keras, data.npz, bundle/): the model beside its bundle, not in it; every float format exported."""
    from edgecnn.export import export_model

    root = tmp_path_factory.mktemp("outside")
    model = _rescaling_model(root / "mine.keras")
    x, y = _images(60, 0)
    x_test, y_test = _images(30, 1)
    data = root / "data.npz"
    np.savez(data, x=x, y=y, x_test=x_test, y_test=y_test, class_names=np.array(["left", "middle", "right"]))
    export_model(model, ("tflite", "onnx"), root / "bundle", data=data)
    return model, data, root / "bundle"


def test_verify_runs_the_reference_with_the_bundles_preprocessing(outside):
    from edgecnn.verify import verify

    _, _, bundle = outside
    report = verify([bundle], progress=False)
    result = report.bundles[0]
    assert result.reference.kind == "keras"
    assert result.reference_accuracy == 1.0  # fed 0..1 pixels it answers one class: a third of them
    assert all(r.passed for r in result.exports), [r.failures for r in result.exports]
    assert all(r.comparison.agreement == 1.0 for r in result.exports)


def test_a_bare_keras_file_reads_its_own_rescaling(outside):
    from edgecnn.runtime import Predictor

    model, _, _ = outside
    predictor = Predictor.load(model)
    assert predictor.preprocessing["input_range"] == "0-255"
    assert any("0-255" in note and "Rescaling" in note for note in predictor.notes), predictor.notes
    x, y = _images(30, 1)
    assert np.mean(predictor.predict(x).argmax(axis=1) == y) == 1.0


def test_a_recorded_range_the_model_contradicts_is_refused(outside):
    from edgecnn.errors import ModelFileError
    from edgecnn.runtime import Predictor

    model, _, _ = outside
    with pytest.raises(ModelFileError, match="Rescaling.*0-255"):
        Predictor.load(model, preprocessing={"input_range": "0-1"})


def test_predict_on_the_bare_keras_file(outside, tmp_path):
    from PIL import Image

    model, _, _ = outside
    x, y = _images(6, 2)
    files = []
    for i, image in enumerate(x):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        files.append(tmp_path / f"{i}.png")
    result = invoke("predict", *files, "--model", model, "--json")
    assert result.returncode == 0, result.stderr
    answers = [row["top_k"][0]["label"] for row in json.loads(result.stdout)["images"]]
    assert answers == [str(int(label)) for label in y]  # a bare .keras file has class indices as labels


def test_bench_feeds_the_keras_rows_the_bundles_range(outside, monkeypatch):
    from edgecnn.bench import targets

    _, _, bundle = outside
    found, _ = targets.find_targets([bundle])
    keras = next(t for t in found if t.name == "keras")
    assert keras.input_range == "0-255"


# ----------------------------------------------------------------------------- one format's failure


def test_a_format_that_fails_costs_no_other(outside, tmp_path, monkeypatch):
    """onnx fails: the TFLite files are still written, onnx-int8 and the .ort files are not attempted, the
    command names them all and exits 1."""
    from edgecnn import export
    from edgecnn.bundle.manifest import load_manifest

    model, data, _ = outside

    def broken(source, path, card):
        raise RuntimeError("Unsupported ops: Counter({'Erfc': 1})\nmore detail")

    monkeypatch.setitem(export.FORMATS, "onnx", export.FORMATS["onnx"].__class__(
        **{**export.FORMATS["onnx"].__dict__, "func": broken}))
    out = tmp_path / "bundle"
    result = export.export_model(model, ("all",), out, data=data, max_accuracy_drop=None)
    assert set(result.failed) == {"onnx", "onnx-int8", "onnx-ort", "onnx-ort-int8"}
    assert "RuntimeError: Unsupported ops: Counter({'Erfc': 1})" in result.failed["onnx"]
    assert "\n" not in result.failed["onnx"]
    assert "made from onnx" in result.failed["onnx-int8"]
    written = {e.format for e in result.entries}
    assert written == {"tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8", "tflite-int16x8"}
    assert set(load_manifest(out).exports) == written
    assert all((out / export.FORMATS[name].file).is_file() for name in written)
    assert not any((out / export.FORMATS[name].file).exists() for name in result.failed)

    cli = invoke("export", "--model", model, "--format", "tflite", "--format", "onnx", "--data", data,
                 "--out", tmp_path / "cli")
    assert cli.returncode == 1, cli.stderr
    assert "Traceback" not in cli.stderr
    fails = [line for line in cli.stderr.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1 and "onnx not written" in fails[0] and "Erfc" in fails[0], cli.stderr
    assert (tmp_path / "cli" / "model_fp32.tflite").is_file()
