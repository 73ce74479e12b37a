"""`edgecnn export`: the files of every format and the manifest, their contents, atomicity and bad input."""
from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from edgecnn.bundle import MANIFEST_FILE, MODEL_FILE, REFERENCE_LABELS_FILE, REFERENCE_PROBS_FILE, read_manifest
from edgecnn.errors import EdgecnnError
from edgecnn.export import ALL, FORMATS, export_model, resolve_formats
from edgecnn.fileio import TMP_PREFIX, sha256_file
from edgecnn.preprocess import DEFAULT_PREPROCESSING

from .conftest import make_idx_dataset, needs_real_data, require_real_data
from .helpers import assert_one_line_error, invoke, run_cli

#: The documented file of each documented format (README, the committed bundle): kept as they are.
#: Every other test here works on whatever edgecnn.export.FORMATS lists.
DOCUMENTED_FILES = {"tflite": "model_fp32.tflite", "tflite-fp16": "model_fp16.tflite",
                    "tflite-dynamic": "model_dynamic.tflite", "tflite-int8": "model_int8.tflite",
                    "onnx": "model_fp32.onnx", "onnx-int8": "model_int8.onnx"}
#: Formats calibrated on images (the .ort files are conversions of the ONNX ones, not calibrated again).
INT8 = [name for name, fmt in FORMATS.items() if fmt.precision == "int8" and not fmt.file.endswith(".ort")]
#: Formats the onnx package reads (ORT-format files are flatbuffers only onnxruntime reads).
ONNX = [name for name, fmt in FORMATS.items() if fmt.file.endswith(".onnx")]
OTHER_SHAPE, OTHER_CLASSES = (32, 32, 3), 5


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def run_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    """Whole batch at once (the files have a dynamic batch); int8 tensors quantized with their own parameters."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        x = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])
    if out["dtype"] == np.int8:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y


def run_export(path: Path, x: np.ndarray) -> np.ndarray:
    return run_onnx(path, x) if path.suffix in (".onnx", ".ort") else run_tflite(path, x)


def tmp_files(folder: Path) -> list[Path]:
    return list(folder.glob(TMP_PREFIX + "*"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from edgecnn.train import TrainConfig, train

    require_real_data()
    return train(TrainConfig(out=tmp_path_factory.mktemp("train"), limit=600, epochs=1)).model_path


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("bundle")
    model = Path(shutil.copy(trained, folder / MODEL_FILE))
    progress = []
    result = export_model(model, on_progress=lambda name, stage: progress.append((name, stage)))
    assert progress == [("reference", "start"), ("reference", "done")] + [
        (name, stage) for name in FORMATS for stage in ("start", "done")]
    return folder, result


@pytest.fixture(scope="module")
def other(tmp_path_factory) -> tuple[Path, Path, object]:
    """A user's own classifier: 32x32x3 colour images, 5 classes, calibration and test images in a .npz."""
    from edgecnn import tfquiet
    from edgecnn.model import save_model

    keras = tfquiet.keras()
    keras.utils.set_random_seed(1)
    layers = keras.layers
    net = keras.Sequential([keras.Input(OTHER_SHAPE), layers.Conv2D(8, 3, strides=2), layers.BatchNormalization(),
                            layers.ReLU(), layers.GlobalAveragePooling2D(), layers.Dense(OTHER_CLASSES, activation="softmax")])
    folder = tmp_path_factory.mktemp("other")
    model = save_model(net, folder / "mine.keras")
    rng = np.random.default_rng(0)
    npz = folder / "images.npz"
    np.savez(npz, x=rng.integers(0, 256, (64, *OTHER_SHAPE), dtype=np.uint8),
             x_test=rng.random((40, *OTHER_SHAPE), dtype=np.float32), y_test=rng.integers(0, OTHER_CLASSES, 40),
             class_names=np.array(["a", "b", "c", "d", "e"]))
    result = export_model(model, out=folder / "exports", calibration_samples=32, data=npz)
    return folder, model, result


def test_registry_names_files_and_all():
    from edgecnn.runtime import BACKENDS, backend_class

    assert {name: FORMATS[name].file for name in DOCUMENTED_FILES} == DOCUMENTED_FILES
    assert len({fmt.file for fmt in FORMATS.values()}) == len(FORMATS)  # one file per format
    for name, fmt in FORMATS.items():  # a runtime can read each file, and it is the format's runtime
        assert Path(fmt.file).suffix in BACKENDS and backend_class(fmt.file).name == fmt.runtime, name
    assert {fmt.runtime for fmt in FORMATS.values()} == {"litert", "onnxruntime"}
    assert [f.name for f in resolve_formats([ALL])] == list(FORMATS)
    assert [f.name for f in resolve_formats(["onnx-int8", "tflite", "onnx-int8"])] == ["tflite", "onnx-int8"]
    with pytest.raises(EdgecnnError, match="unknown export format onnx-fp8"):
        resolve_formats(["onnx-fp8"])


@needs_real_data
def test_writes_every_format_and_a_manifest_that_describes_them(bundle):
    folder, result = bundle
    manifest = read_manifest(folder)
    source_sha = sha256_file(folder / MODEL_FILE)
    assert result.manifest_path == folder / MANIFEST_FILE and not tmp_files(folder)
    assert [e.format for e in result.entries] == list(FORMATS)
    assert manifest["model"] == {"file": MODEL_FILE, "sha256": source_sha, "input_shape": [28, 28, 1], "classes": 10}
    assert manifest["class_names"][0] == "T-shirt/top" and len(manifest["class_names"]) == 10
    assert manifest["preprocessing"] == DEFAULT_PREPROCESSING
    assert set(manifest["exports"]) == set(FORMATS)
    for name, entry in manifest["exports"].items():
        path = folder / FORMATS[name].file
        assert entry["file"] == path.name and entry["format"] == name
        assert entry["bytes"] == path.stat().st_size > 0 and entry["sha256"] == sha256_file(path)
        assert entry["runtime"] == FORMATS[name].runtime and entry["precision"] == FORMATS[name].precision
        assert entry["source_sha256"] == source_sha
        assert datetime.fromisoformat(entry["created"]).utcoffset().total_seconds() == 0
        assert entry["versions"]["tensorflow"] and entry["versions"]["onnxruntime"] and entry["versions"]["ai-edge-litert"]
        assert entry["class_names"] == manifest["class_names"] and entry["preprocessing"] == manifest["preprocessing"]
        assert entry["inputs"][0]["shape"] == [None, 28, 28, 1] and entry["outputs"][0]["shape"] == [None, 10]
        assert entry["seconds"] >= 0
    assert manifest["exports"]["onnx"]["opset"] == 17
    assert manifest["exports"]["onnx-int8"]["quantization"] == {
        "quant_format": "QDQ", "activation_type": "uint8", "weight_type": "int8", "per_channel": True, "reduce_range": True,
        "calibrate_method": "MinMax", "float_stem": True,
        "float_nodes": manifest["exports"]["onnx-int8"]["quantization"]["float_nodes"]}
    for name in INT8:
        assert manifest["exports"][name]["calibration"]["images"] == 500


@needs_real_data
def test_reference_probabilities_are_the_keras_ones_on_the_test_set(bundle, trained):
    from edgecnn.datasets import load_dataset
    from edgecnn.preprocess import to_model_input
    from edgecnn.model import load_model

    folder, result = bundle
    reference = read_manifest(folder)["reference"]
    probs, labels = np.load(folder / REFERENCE_PROBS_FILE), np.load(folder / REFERENCE_LABELS_FILE)
    assert probs.dtype == np.float32 and probs.shape == (10_000, 10) and labels.dtype == np.uint8
    assert reference["probs_sha256"] == sha256_file(folder / REFERENCE_PROBS_FILE)
    assert reference["images"] == 10_000 and reference["keras_accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels))
    data = load_dataset()
    assert np.array_equal(labels, data.y_test)
    keras_probs = load_model(trained)(to_model_input(data.x_test[:50], (28, 28, 1)), training=False).numpy()
    np.testing.assert_allclose(probs[:50], keras_probs, atol=1e-6)


@needs_real_data
def test_onnx_passes_checker_with_named_dynamic_batch_and_metadata(bundle):
    import onnx

    folder, _ = bundle
    for name in ONNX:
        model = onnx.load(str(folder / FORMATS[name].file))
        onnx.checker.check_model(model, full_check=True)
        (inp,), (out,) = model.graph.input, model.graph.output
        assert inp.name == "input" and out.name == "probabilities"
        batch = inp.type.tensor_type.shape.dim[0]
        assert batch.dim_param and not batch.HasField("dim_value")
        meta = {p.key: p.value for p in model.metadata_props}
        assert json.loads(meta["class_names"])[9] == "Ankle boot"
        assert json.loads(meta["preprocessing"])["background"] == "dark"


@needs_real_data
def test_tflite_int8_records_its_layer_choice_and_its_tensors(bundle):
    """Mixed precision: float input and output whatever the mix, the layers recorded with their reasons."""
    from ai_edge_litert.interpreter import Interpreter

    folder, _ = bundle
    interpreter = Interpreter(model_path=str(folder / "model_int8.tflite"))
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    entry = read_manifest(folder)["exports"]["tflite-int8"]
    layers, mixed = entry["layers"], entry["mixed_precision"]
    assert [layer["name"] for layer in layers] == ["conv2d", "conv2d_1", "dense", "dense_1"]
    assert all(layer["reason"] in ("error", "latency", "delegate", "budget") for layer in layers)
    assert mixed["met"] and mixed["max_accuracy_drop_points"] == 0.5 and "not among the calibration" in mixed["validation_source"]
    assert inp["dtype"] == out["dtype"] == np.float32
    assert entry["inputs"][0]["dtype"] == entry["outputs"][0]["dtype"] == "float32"
    assert any(op["op_name"] == "QUANTIZE" for op in interpreter._get_ops_details())  # noqa: SLF001


@needs_real_data
def test_all_int8_is_an_integer_only_file(bundle, tmp_path):
    """`--all-int8`: every layer int8 with int8 input and output tensors, their scales in the manifest."""
    from ai_edge_litert.interpreter import Interpreter

    folder, _ = bundle
    result = invoke("export", "--model", folder / "model.keras", "--format", "tflite-int8", "--all-int8",
                    "--calibration-samples", "100", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    interpreter = Interpreter(model_path=str(tmp_path / "model_int8.tflite"))
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    entry = read_manifest(tmp_path)["exports"]["tflite-int8"]
    assert inp["dtype"] == out["dtype"] == np.int8 and "layers" not in entry
    assert entry["inputs"][0]["dtype"] == entry["outputs"][0]["dtype"] == "int8"
    assert entry["inputs"][0]["quantization"]["scale"] == pytest.approx(inp["quantization"][0])
    assert entry["inputs"][0]["quantization"]["zero_point"] == inp["quantization"][1]


@needs_real_data
def test_tflite_int16x8_keeps_16_bit_activations_and_predicts_through_the_predictor(bundle):
    from ai_edge_litert.interpreter import Interpreter

    from edgecnn.datasets import load_dataset
    from edgecnn.runtime import Predictor

    folder, _ = bundle
    path = folder / "model_int16x8.tflite"
    dtypes = {np.dtype(t["dtype"]) for t in Interpreter(model_path=str(path)).get_tensor_details()}
    assert np.dtype(np.int16) in dtypes and np.dtype(np.int8) in dtypes  # int16 activations, int8 weights
    predictor = Predictor.load(path)
    assert predictor.precision == "int16x8"
    keras = np.load(folder / REFERENCE_PROBS_FILE)[:200]
    probs = predictor.predict(load_dataset().x_test[:200])
    assert (probs.argmax(1) == keras.argmax(1)).mean() >= 0.99


@needs_real_data
def test_exports_predict_like_keras_on_a_batch(bundle):
    """Float exports match the Keras probabilities; fp16/dynamic/int8 stay close. 300 images in one batch."""
    from edgecnn.datasets import load_dataset
    from edgecnn.preprocess import to_model_input

    folder, _ = bundle
    x = to_model_input(load_dataset().x_test[:300], (28, 28, 1))
    keras = np.load(folder / REFERENCE_PROBS_FILE)[:300]
    tolerance = {"float32": 1e-4, "float16": 1e-2, "dynamic": 0.1, "int8": 0.2, "int16x8": 0.05}
    for name, fmt in FORMATS.items():
        probs = run_export(folder / fmt.file, x)
        assert probs.shape == keras.shape, name
        assert np.abs(probs - keras).max() <= tolerance[FORMATS[name].precision], name
        agreement = np.mean(probs.argmax(1) == keras.argmax(1))
        assert agreement >= (1.0 if FORMATS[name].precision == "float32" else 0.95), (name, agreement)


@needs_real_data
def test_reexporting_one_format_keeps_the_other_entries(bundle, tmp_path):
    folder = Path(shutil.copytree(bundle[0], tmp_path / "b"))
    before = read_manifest(folder)
    result = export_model(folder / MODEL_FILE, formats=["tflite-dynamic"])
    after = read_manifest(folder)
    assert [e.format for e in result.entries] == ["tflite-dynamic"]
    assert set(after["exports"]) == set(FORMATS)
    for name in FORMATS:
        if name != "tflite-dynamic":
            assert after["exports"][name] == before["exports"][name]
    assert after["exports"]["tflite-dynamic"]["created"] >= before["exports"]["tflite-dynamic"]["created"]
    assert after["exports"]["tflite-dynamic"]["sha256"] == sha256_file(folder / "model_dynamic.tflite")
    assert result.notes == []


@needs_real_data
def test_a_failing_exporter_leaves_earlier_files_and_manifest_consistent(bundle, tmp_path, monkeypatch):
    folder = Path(shutil.copytree(bundle[0], tmp_path / "b"))
    before = read_manifest(folder)
    for name in ("tflite", "tflite-int8"):  # gone before the run: this run must write them again
        (folder / FORMATS[name].file).unlink()
    onnx_bytes = (folder / "model_fp32.onnx").read_bytes()

    def crash(source, path, card):
        path.write_bytes(b"half an onnx file")
        raise RuntimeError("converter crashed\nsecond line")

    monkeypatch.setitem(FORMATS, "onnx", dataclasses.replace(FORMATS["onnx"], func=crash))
    result = export_model(folder / MODEL_FILE)  # one format's failure costs no other: no raise, every other written
    message = result.failed["onnx"]
    assert "onnx export" in message and "converter crashed" in message and "\n" not in message
    assert set(result.failed) == {"onnx", "onnx-int8", "onnx-ort", "onnx-ort-int8"}  # made from onnx: not attempted
    assert {e.format for e in result.entries} == set(FORMATS) - set(result.failed)
    assert not tmp_files(folder)
    assert (folder / "model_fp32.onnx").read_bytes() == onnx_bytes
    after = read_manifest(folder)
    assert after["exports"]["onnx"] == before["exports"]["onnx"]
    assert after["exports"]["onnx-int8"] == before["exports"]["onnx-int8"]
    for name, entry in after["exports"].items():
        assert sha256_file(folder / entry["file"]) == entry["sha256"], name
    assert after["exports"]["tflite"]["created"] >= before["exports"]["tflite"]["created"]


def test_other_input_shape_exports_with_calibration_npz(other):  # not Fashion-MNIST-shaped: no dataset read
    folder, model_path, result = other
    out = folder / "exports"
    manifest = read_manifest(out)
    assert [e.format for e in result.entries] == list(FORMATS)
    assert manifest["model"]["input_shape"] == list(OTHER_SHAPE) and manifest["model"]["classes"] == OTHER_CLASSES
    assert manifest["model"]["file"] == "../mine.keras"
    assert manifest["class_names"] == ["a", "b", "c", "d", "e"]
    assert manifest["preprocessing"] == {"height": 32, "width": 32, "channels": 3, "background": None,
                                         "input_range": "0-1", "resize": "center-crop", "output": "probabilities"}
    assert manifest["exports"]["tflite-int8"]["inputs"][0]["shape"] == [None, *OTHER_SHAPE]
    assert manifest["exports"]["onnx-int8"]["calibration"]["images"] == 32
    assert manifest["reference"]["images"] == 40 and np.load(out / REFERENCE_PROBS_FILE).shape == (40, OTHER_CLASSES)
    x = np.random.default_rng(1).random((4, *OTHER_SHAPE), dtype=np.float32)
    from edgecnn.model import load_model

    keras = load_model(model_path)(x, training=False).numpy()
    for name in ("tflite", "onnx"):
        np.testing.assert_allclose(run_export(out / FORMATS[name].file, x), keras, atol=1e-4)
    assert run_export(out / "model_int8.tflite", x).shape == (4, OTHER_CLASSES)


def test_other_input_shape_without_calibration_images_fails_before_writing(other, tmp_path):
    _, model_path, _ = other
    with pytest.raises(EdgecnnError, match="pass --data PATH"):
        export_model(model_path, formats=["tflite", "onnx-int8"], out=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    result = export_model(model_path, formats=["onnx"], out=tmp_path / "y")  # float32 needs no images
    assert [e.format for e in result.entries] == ["onnx"]
    assert any("reference probabilities not saved" in note for note in result.notes)


def test_npz_data_is_checked_against_the_model(tmp_path):
    """Every problem is found before any conversion starts, in one line naming the file."""
    from edgecnn.datasets.bundled import load_for_model

    cases = {
        "a.npz": ({"images": np.zeros((3, 28, 28), np.uint8)}, r"a\.npz has no array 'x' or 'x_train' \(found: images\)"),
        "b.npz": ({"x_train": np.zeros((3, 32, 32, 3), np.uint8)}, r"b\.npz.* holds 32x32x3 images but the model takes"),
        "c.npz": ({"x": np.zeros((3, 28, 28), np.uint8), "x_test": np.zeros((2, 28, 28), np.uint8),
                   "y_test": np.array([0, 12])}, r"c\.npz.*label 12 is outside"),
    }
    for name, (arrays, needle) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(EdgecnnError, match=needle):
            load_for_model(tmp_path / name, (28, 28, 1), 10)
    (tmp_path / "d.npz").write_text("not numpy")
    with pytest.raises(EdgecnnError, match="not a .npz file"):
        load_for_model(tmp_path / "d.npz", (28, 28, 1), 10)
    np.savez(tmp_path / "e.npz", x=np.full((3, 28, 28, 1), 0.5, np.float32))
    assert load_for_model(tmp_path / "e.npz", (28, 28, 1), 10).x_train.shape == (3, 28, 28, 1)


@pytest.mark.parametrize("args, needle", [
    (["--model", "{tmp}/missing.keras"], "missing.keras not found"),
    (["--model", "{tmp}/fake.keras"], "fake.keras is not a valid .keras file"),
    (["--model", "{tmp}/notes.txt"], "notes.txt is not a Keras model"),
    (["--model", "{model}", "--format", "tflite-int4"], "'tflite-int4' is not one of"),
    (["--model", "{model}", "--calibration-samples", "0"], "--calibration-samples must be at least 1, got 0"),
    (["--model", "{model}", "--opset", "7"], "--opset must be between 13 and 18"),
    (["--model", "{model}", "--out", "{tmp}/notes.txt/sub", "--format", "tflite", "--data-dir", "{data}"],
     "cannot write to output folder"),
    (["--model", "{model}", "--format", "onnx-int8", "--calibration-data", "{tmp}/notes.txt"], "not a .npz"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle, tmp_path):
    (tmp_path / "fake.keras").write_bytes(b"not a zip")
    (tmp_path / "notes.txt").write_text("hello")
    model = tmp_path / "real.keras"
    if "{model}" in args:
        from edgecnn.model import build_model, save_model

        save_model(build_model(), model)
    data = make_idx_dataset(tmp_path / "idx") if "{data}" in args else None  # never the real dataset
    proc = invoke("export", *[a.format(tmp=tmp_path, model=model, data=data) for a in args], cwd=tmp_path)
    assert_one_line_error(proc, needle, code=2)
    assert not tmp_files(tmp_path)


def test_cli_prints_progress_and_a_table(tiny_bundle, tiny_data, tmp_path):
    model = Path(shutil.copy(tiny_bundle / MODEL_FILE, tmp_path / MODEL_FILE))
    proc = run_cli("export", "--model", model, "--format", "tflite", "--format", "onnx", "--data-dir", tiny_data,
                   cwd=tmp_path)  # a process: TensorFlow's noise goes to its file descriptors
    assert proc.returncode == 0, proc.stderr
    assert "[1/2] exporting tflite -> model_fp32.tflite" in proc.stderr
    assert "[2/2] exporting onnx -> model_fp32.onnx" in proc.stderr
    assert "W0000" not in proc.stderr and "tensorflow" not in proc.stderr.lower()  # TF's noise is hidden
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["format", "file", "size", "seconds"]
    assert lines[2].split()[:2] == ["tflite", "model_fp32.tflite"] and lines[3].split()[:2] == ["onnx", "model_fp32.onnx"]
    assert f"manifest -> {model.parent / MANIFEST_FILE}" in proc.stdout


def testapply_float_stem_rewrite_keeps_the_float_model_identical(tiny_bundle, tmp_path):
    """The Conv->Relu->MaxPool stem reordered to Conv->MaxPool->Relu computes the same numbers."""
    from edgecnn.convert.onnx import apply_float_stem
    from edgecnn.quantize.mixed import SLOWER_IN_INT8

    folder = tiny_bundle
    rewritten = Path(shutil.copy(folder / "model_fp32.onnx", tmp_path / "stem.onnx"))
    stem = apply_float_stem(rewritten)
    assert [name.rsplit("/", 1)[-1] for name in stem] == ["BiasAdd", "MaxPool2d", "Relu"]
    x = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(run_onnx(rewritten, x), run_onnx(folder / "model_fp32.onnx", x), atol=1e-6)
    entry = read_manifest(folder)["exports"]["onnx-int8"]
    first = entry["layers"][0]  # the stem's precision is measured: float for latency only when timed slower in int8
    assert first["float32_s"] > 0 and first["int8_s"] > 0
    assert first["reason"] != "latency" or first["int8_s"] / first["float32_s"] >= SLOWER_IN_INT8
    assert (first["precision"] == "float32") == (set(stem) <= set(entry["quantization"]["float_nodes"]))


def test_apply_float_stem_is_left_alone_where_the_rewrite_does_not_apply(other, tmp_path):
    """A first conv followed by BatchNorm (not Relu->MaxPool) is quantized like the rest."""
    import shutil

    from edgecnn.convert.onnx import apply_float_stem

    _, _, result = other
    graph = shutil.copy(result.manifest_path.parent / "model_fp32.onnx", tmp_path / "model.onnx")
    assert apply_float_stem(Path(graph)) == []
