"""A user's own model and images, end to end: MobileNet-style Keras models on a class-folder dataset of PNGs.

Each variant is trained here, in the test, on generated shapes (RGB, 4 classes,
mixed image sizes): plain (inputs in [0, 1]), ``Rescaling(1/255)`` first (inputs
0..255) and logits out. Each goes through export (every format) -> verify (the
reference model's gates) -> predict on the PNG files; the plain one also through
bench and report, and bare files copied out of its bundle. Last, ``train --data``
and ``pipeline`` on the same folders.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from .conftest import built_once, invoke

pytestmark = pytest.mark.e2e

CLASSES = ("circle", "cross", "square", "triangle")  # sorted, as the folders are read
SIZE = 32
VARIANTS = ("plain", "rescaling", "logits")


def draw_shape(kind: str, rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """One bright shape at a random place and scale on a dark, slightly noisy background."""
    width, height = size
    background = tuple(int(v) for v in rng.integers(0, 40, 3))
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    fill = tuple(int(v) for v in rng.integers(150, 256, 3))
    side = int(rng.integers(min(size) // 2, min(size) * 3 // 4))
    left, top = int(rng.integers(1, width - side)), int(rng.integers(1, height - side))
    box = (left, top, left + side, top + side)
    if kind == "circle":
        draw.ellipse(box, fill=fill)
    elif kind == "square":
        draw.rectangle(box, fill=fill)
    elif kind == "triangle":
        draw.polygon([(left, top + side), (left + side, top + side), (left + side // 2, top)], fill=fill)
    else:
        bar = max(2, side // 4)
        draw.rectangle((left, top + (side - bar) // 2, left + side, top + (side + bar) // 2), fill=fill)
        draw.rectangle((left + (side - bar) // 2, top, left + (side + bar) // 2, top + side), fill=fill)
    noise = rng.integers(-12, 13, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8))


def make_shapes(root: Path, train: int = 100, test: int = 100, seed: int = 0) -> Path:
    """root/train/<class>/*.png and root/test/<class>/*.png; every fifth image 40x40 (resized on load)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("test", test)):
        for kind in CLASSES:
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                size = (40, 40) if i % 5 == 0 else (SIZE, SIZE)
                draw_shape(kind, rng, size).save(folder / f"{i:03d}.png")
    return root


def mobilenet_style(variant: str):
    """BatchNorm, DepthwiseConv2D, SeparableConv2D, GlobalAveragePooling2D, ReLU6; 32x32 RGB, 4 classes."""
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    layers = keras.layers
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Rescaling(1 / 255)(inputs) if variant == "rescaling" else inputs
    for layer in (layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False), layers.BatchNormalization(momentum=0.9),
                  layers.ReLU(6.0), layers.DepthwiseConv2D(3, padding="same", use_bias=False),
                  layers.BatchNormalization(momentum=0.9), layers.ReLU(6.0), layers.Conv2D(24, 1, use_bias=False),
                  layers.BatchNormalization(momentum=0.9), layers.ReLU(6.0),
                  layers.SeparableConv2D(32, 3, strides=2, padding="same", use_bias=False),
                  layers.BatchNormalization(momentum=0.9), layers.ReLU(6.0), layers.GlobalAveragePooling2D()):
        x = layer(x)
    outputs = layers.Dense(len(CLASSES), activation=None if variant == "logits" else "softmax")(x)
    return keras.Model(inputs, outputs)


def train_variant(variant: str, data: Path, out: Path) -> Path:
    """Train on the folder's training split as edgecnn reads it, so the test files are the same pixels."""
    from edgecnn import tfquiet
    from edgecnn.datasets import load_data

    keras = tfquiet.keras()
    keras.utils.set_random_seed(1)
    dataset = load_data(data, image_size=(SIZE, SIZE), channels=3)
    x = dataset.x_train.astype(np.float32) / (1.0 if variant == "rescaling" else 255.0)
    model = mobilenet_style(variant)
    model.compile(optimizer=keras.optimizers.Adam(0.01), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=variant == "logits"))
    with tfquiet.quiet():
        model.fit(x, dataset.y_train, epochs=12, batch_size=32, verbose=0)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    return out / "model.keras"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "shapes", make_shapes)


def _exported(variant: str, shapes: Path, tmp_path_factory) -> Path:
    def build(root: Path) -> None:
        model = train_variant(variant, shapes, root)
        result = invoke("export", "--model", model, "--format", "all", "--data", shapes, "--out", root)
        assert result.returncode == 0, result.stderr
    return built_once(tmp_path_factory, f"own-{variant}", build)


@pytest.fixture(scope="module", params=VARIANTS)
def bundle(request, shapes, tmp_path_factory) -> tuple[str, Path]:
    return request.param, _exported(request.param, shapes, tmp_path_factory)


def test_export_records_the_model_its_data_and_its_preprocessing(bundle, shapes):
    from edgecnn.bundle.manifest import load_manifest
    from edgecnn.export import FORMATS

    variant, folder = bundle
    manifest = load_manifest(folder)
    assert set(manifest.exports) == set(FORMATS)
    assert manifest.class_names == list(CLASSES)
    pre = manifest.preprocessing
    assert (pre["height"], pre["width"], pre["channels"]) == (SIZE, SIZE, 3)
    assert pre["input_range"] == ("0-255" if variant == "rescaling" else "0-1")
    assert pre["output"] == ("logits" if variant == "logits" else "probabilities")
    assert pre["resize"] == "center-crop"
    data = manifest.data
    assert data.kind == "folders" and data.path == str(shapes.resolve())
    assert data.counts["train"] == 400 and data.counts["test"] == 400 and data.fingerprint
    assert (folder / data.test_set_file).is_file()


def test_verify_passes_the_reference_gates(bundle):
    _, folder = bundle
    result = invoke("verify", folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS: all 9 exports" in result.stdout
    assert "classes: circle, cross, square, triangle" in result.stdout
    assert "on 400 test images" in result.stdout


def test_predict_on_the_png_files_matches_keras(bundle, shapes):
    """Own labels, and int8 accuracy within 1 point of Keras on the very same files."""
    from edgecnn.runtime import Predictor

    _, folder = bundle
    files = sorted((shapes / "test").glob("*/*.png"))
    truth = np.array([CLASSES.index(f.parent.name) for f in files])
    keras = Predictor.load(folder / "model.keras")
    keras_accuracy = np.mean(keras.predict_images(files).argmax(axis=1) == truth)
    result = invoke("predict", "--model", folder / "model_int8.tflite", "--json", "--top-k", "1",
                    *(shapes / "test" / name for name in CLASSES))
    assert result.returncode == 0, result.stderr
    labels = [image["top_k"][0]["label"] for image in json.loads(result.stdout)["images"]]
    assert set(labels) <= set(CLASSES)
    accuracy = np.mean(np.array([CLASSES.index(label) for label in labels]) == truth)
    assert keras_accuracy > 0.9
    assert abs(accuracy - keras_accuracy) <= 0.01, (accuracy, keras_accuracy)


def test_bare_files_know_their_labels_and_preprocessing(bundle, shapes, tmp_path):
    from edgecnn.runtime import Predictor

    variant, folder = bundle
    files = sorted((shapes / "test" / "square").glob("*.png"))[:20]
    for name in ("model_int8.tflite", "model_fp32.onnx"):
        inside = Predictor.load(folder / name)
        bare = Predictor.load(shutil.copy(folder / name, tmp_path / name))
        assert bare.classes == CLASSES
        assert bare.preprocessing == inside.preprocessing
        assert not [n for n in bare.notes if "class indices" in n]
        np.testing.assert_array_equal(bare.predict_images(files), inside.predict_images(files))
        assert np.mean(bare.predict_images(files).argmax(axis=1) == CLASSES.index("square")) >= 0.9


def test_bench_and_report_show_the_users_classes(shapes, tmp_path_factory, tmp_path):
    """Two of the files (the pipeline test benches a whole bundle): the inputs are the bundle's own test images."""
    folder = shutil.copytree(_exported("plain", shapes, tmp_path_factory), tmp_path / "bundle")
    result = invoke("bench", folder / "model_int8.tflite", folder / "model_fp32.onnx", "--quick", "--runs", "20",
                    "--warmup", "2")
    assert result.returncode == 0, result.stderr
    assert "test split of class folders" in json.loads((folder / "bench.json").read_text())["config"]["input"]
    assert invoke("verify", folder).returncode == 0
    result = invoke("report", folder)
    assert result.returncode == 0, result.stderr
    page = (folder / "report.html").read_text()
    for name in CLASSES:
        assert name in page
    assert "T-shirt" not in page


def test_verify_uses_the_bundles_copy_when_the_data_is_gone(shapes, tmp_path_factory, tmp_path):
    data = shutil.copytree(shapes, tmp_path / "images")
    folder = tmp_path / "bundle"
    model = shutil.copy(_exported("plain", shapes, tmp_path_factory) / "model.keras", tmp_path / "model.keras")
    assert invoke("export", "--model", model, "--format", "tflite", "--data", data, "--out", folder).returncode == 0
    shutil.rmtree(data)
    result = invoke("verify", folder)
    assert result.returncode == 0, result.stderr
    assert "test_set.npz" in result.stdout
    (folder / "test_set.npz").unlink()
    result = invoke("verify", folder)
    assert result.returncode == 2 and "--data" in result.stderr and "Traceback" not in result.stderr


def test_train_on_class_folders_then_pipeline(shapes, tmp_path, monkeypatch):
    """The data flows through every step; the bench step's timing runs are cut short (the bench has its own tests)."""
    monkeypatch.setattr("edgecnn.pipeline.QUICK", {"batch_sizes": (1,), "threads": (1,), "runs": 10, "warmup": 1})
    out = tmp_path / "bundle"
    result = invoke("train", "--data", shapes, "--epochs", "3", "--out", out)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == list(CLASSES) and metrics["input_shape"] == [SIZE, SIZE, 3]
    result = invoke("pipeline", "--data", shapes, "--epochs", "3", "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS: pipeline finished" in result.stdout
    assert "circle" in (out / "report.html").read_text()
