"""Shared fixtures: the tiny trained bundle, the tiny hand-made models, small IDX datasets; the real-data marker.

Plain helpers (running the CLI, hiding optional packages) are in ``helpers.py``
and re-exported here for the test files that import them from ``conftest``.
Expensive fixtures are built once per run (shared by pytest-xdist workers) and are
read-only: copy before changing.
"""
from __future__ import annotations

import gzip
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from edgecnn.datasets.fashion_mnist import FILES, SYSTEM_DIR

from .helpers import REPO, assert_one_line_error, invoke, run_cli  # noqa: F401 - re-exported

REAL_DATA = SYSTEM_DIR if all((SYSTEM_DIR / f).is_file() for f in FILES.values()) else None
_NO_REAL_DATA = "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"


def needs_real_data(test):
    """A test that reads the real Fashion-MNIST (70,000 images): e2e, and skipped where it is not installed.

    Fixtures that read it call :func:`require_real_data` instead.
    """
    return pytest.mark.e2e(pytest.mark.skipif(REAL_DATA is None, reason=_NO_REAL_DATA)(test))


def require_real_data() -> Path:
    """The real dataset's folder, or skip (for fixtures: a test only gets there when it is e2e)."""
    if REAL_DATA is None:
        pytest.skip(_NO_REAL_DATA)
    return REAL_DATA


@pytest.fixture(scope="session", autouse=True)
def _never_download():
    """No test may fall through to Keras's downloader: a missing dataset is a skip, never a download."""
    def refuse():
        raise AssertionError("a test tried to download Fashion-MNIST: give it data (tiny_data, idx_dir) "
                             "or mark it @needs_real_data")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("edgecnn.datasets.fashion_mnist._download_with_keras", refuse)
        yield


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    """Write a uint8 array as an IDX file (the inverse of data.read_idx)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def make_idx_dataset(folder: Path, n_train: int = 200, n_test: int = 50, seed: int = 0) -> Path:
    """A small synthetic Fashion-MNIST-shaped dataset in IDX files."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, name in FILES.items():
        write_idx(folder / name, arrays[key])
    return folder


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    return make_idx_dataset(tmp_path / "idx")


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """``build(folder)`` once per test run, even across pytest-xdist workers (they share the parent of their
    base temp folders), so ``-n 2`` does not train the tiny bundle twice. Read-only for tests."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder, done = root / name, root / f"{name}.done"
    from filelock import FileLock

    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            build(folder)
            done.touch()
    return folder


def _build_tiny(root: Path) -> None:
    from edgecnn.export import export_model
    from edgecnn.train import TrainConfig, train

    data = make_idx_dataset(root / "idx", n_train=600, n_test=300)
    train(TrainConfig(out=root / "bundle", epochs=1, data=data))
    export_model(root / "bundle" / "model.keras", ("all",), calibration_samples=100, data=data)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A tiny trained reference CNN with every export, its manifest and reference probabilities, trained on
    ``tiny_data``; built once per run (read-only: copy it before changing anything)."""
    return built_once(tmp_path_factory, "tiny", _build_tiny) / "bundle"


@pytest.fixture(scope="session")
def tiny_data(tiny_bundle) -> Path:
    """The synthetic IDX dataset (600 training, 300 test images) the tiny bundle was trained on."""
    return tiny_bundle.parent / "idx"


# ----------------------------------------------------------------------------- tiny hand-made models

#: The tiny models' kinds and files: one per runtime, and int8-in/int8-out TFLite (every BACKENDS extension).
TINY_MODELS = {"keras": "tiny.keras", "tflite": "fp32.tflite", "int8": "int8.tflite", "onnx": "fp32.onnx",
               "ort": "fp32.ort"}
#: The kinds that are exports (run without TensorFlow).
TINY_EXPORTS = tuple(kind for kind, file in TINY_MODELS.items() if not file.endswith(".keras"))


def make_tiny_models(folder: Path) -> dict[str, Path]:
    """tiny.keras and its exports made without edgecnn.export (so the Predictor is tested on its own):
    fp32.tflite, int8.tflite (int8 in/out) and fp32.onnx (dynamic batch). A few seconds."""
    from edgecnn import tfquiet

    tf, keras = tfquiet.tensorflow(), tfquiet.keras()
    import tf2onnx

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1), name="input"),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(4),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel * 25, bias])  # confident outputs: distinct top-1 across images
    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / file for kind, file in TINY_MODELS.items()}
    model.save(paths["keras"])
    calibration = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
    with tfquiet.quiet(stdout=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Statistics for quantized inputs were expected"
        paths["tflite"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        paths["int8"].write_bytes(converter.convert())
        spec = [tf.TensorSpec((None, 28, 28, 1), tf.float32, name="input")]
        proto, _ = tf2onnx.convert.from_function(tf.function(lambda x: model(x, training=False), input_signature=spec),
                                                 input_signature=spec, opset=17)
    paths["onnx"].write_bytes(proto.SerializeToString())
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    with tfquiet.quiet(stdout=True):
        convert_onnx_models_to_ort(paths["onnx"], output_dir=folder / "ort", optimization_styles=[OptimizationStyle.Fixed])
    (folder / "ort" / "fp32.ort").replace(paths["ort"])
    return paths


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """:func:`make_tiny_models`, once per run (read-only: copy before changing)."""
    folder = built_once(tmp_path_factory, "tiny-models", make_tiny_models)
    return {kind: folder / file for kind, file in TINY_MODELS.items()}


def blob_images(n: int, seed: int = 1) -> np.ndarray:
    """Noisy images each with a bright rectangle somewhere: varied enough to move the tiny model's top-1."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    for image in x:
        top, left = rng.integers(0, 20, 2)
        height, width = rng.integers(4, 9, 2)
        image[top:top + height, left:left + width] = rng.integers(150, 256)
    return x
