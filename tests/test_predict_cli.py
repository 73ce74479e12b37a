"""`edgecnn predict` and its library function: output, per-image failures, model failures, plots; e2e figures."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.bundle import MANIFEST_FILE, default_bundle, read_manifest
from edgecnn.errors import ModelFileError
from edgecnn.predict import predict_paths
from edgecnn.runtime import Predictor

from .conftest import REAL_DATA, blob_images, needs_real_data
from .helpers import TENSORFLOW, assert_one_line_error, invoke, run_cli, without
from .test_images import png_header_only


@pytest.fixture
def models(tiny_models) -> dict[str, Path]:
    return tiny_models


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Three good images: two model-sized PNGs and a large light-background JPEG."""
    folder = tmp_path_factory.mktemp("photos")
    x = blob_images(3, seed=7)
    Image.fromarray(x[0]).save(folder / "a.png")
    Image.fromarray(x[1]).save(folder / "b.png")
    Image.fromarray(255 - x[2]).convert("RGB").resize((120, 90)).save(folder / "c.jpg", quality=95)
    return folder


def test_text_output_and_folder_argument(models, photos):
    proc = run_cli("predict", photos, "--model", models["int8"], "--top-k", "2")  # a process: its stderr is all of it
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(photos / n) for n in ("a.png", "b.png", "c.jpg")]
    predictor = Predictor.load(models["int8"])
    for line, name in zip(lines, ("a.png", "b.png", "c.jpg")):
        (label, p), second = predictor.classify(predictor.image_input(photos / name)[None], top_k=2)[0]
        assert line.split(": ", 1)[1].startswith(f"{label} ({100 * p:.1f}%), {second.label}")
    notes = proc.stderr.splitlines()  # no runtime or TensorFlow noise: the notes that the bare file is undescribed
    assert len(notes) == 2 and all(line.startswith("note: int8.tflite carries no ") for line in notes), proc.stderr


def test_json_document_matches_the_library(models, photos):
    proc = invoke("predict", photos / "a.png", photos / "c.jpg", "--model", models["onnx"], "--json", "--top-k", "3")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["backend"] == "onnxruntime" and doc["precision"] == "float32" and len(doc["classes"]) == 10
    probs = Predictor.load(models["onnx"]).predict_images([photos / "a.png", photos / "c.jpg"])
    for item, row in zip(doc["images"], probs):
        assert item["error"] is None and len(item["top_k"]) == 3
        assert np.allclose(list(item["probabilities"].values()), row, atol=1e-6)
        assert item["top_k"][0]["label"] == doc["classes"][int(row.argmax())]
    assert doc["failed"] == 0


def test_bad_images_each_get_one_line_and_the_rest_is_predicted(models, photos, tmp_path):
    bad = {
        "text.png": lambda p: p.write_text("hello"),
        "zero.png": lambda p: p.write_bytes(b""),
        "cut.png": lambda p: p.write_bytes((photos / "a.png").read_bytes()[:60]),
        "huge.png": lambda p: png_header_only(p, 9000, 6000),
    }
    for name, make in bad.items():
        make(tmp_path / name)
    (tmp_path / "empty_dir").mkdir()
    args = [photos / "a.png", *(tmp_path / n for n in bad), tmp_path / "missing.png", tmp_path / "empty_dir",
            photos / "b.png"]
    proc = invoke("predict", *args, "--model", models["tflite"])
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("note: ")]
    assert len(errors) == 6 and all(line.startswith("error: ") for line in errors), proc.stderr
    for line, name, needle in zip(errors, [*bad, "missing.png", "empty_dir"],
                                  ["not an image", "empty file", "truncated", "megapixel", "not found", "no image files"]):
        assert str(tmp_path / name) in line and needle in line, line
    assert [line.split(":")[0] for line in proc.stdout.splitlines()] == [str(photos / "a.png"), str(photos / "b.png")]
    doc = json.loads(invoke("predict", *args, "--model", models["tflite"], "--json").stdout)
    assert doc["failed"] == 6 and [i["error"] is None for i in doc["images"]] == [True] + [False] * 6 + [True]


@pytest.mark.parametrize("change, name, needle", [
    (lambda b: b[: len(b) // 3], "cut.tflite", "corrupt, truncated or not TFLite"),
    (lambda b: b[: len(b) // 3], "cut.onnx", "corrupt, truncated or not ONNX"),
    (lambda b: b, "model.pt", "unknown model type '.pt'"),
    (None, "absent.tflite", "not found"),
])
def test_model_problems_exit_2_with_one_line(models, photos, tmp_path, change, name, needle):
    if change is not None:
        source = models["onnx"] if name.endswith(".onnx") else models["tflite"]
        (tmp_path / name).write_bytes(change(source.read_bytes()))
    proc = invoke("predict", photos / "a.png", "--model", tmp_path / name)
    assert_one_line_error(proc, needle, str(tmp_path / name), code=2)
    assert proc.stdout == ""


def test_default_model_is_the_bundles_int8_tflite(models, photos, tmp_path, monkeypatch):
    bundle = tmp_path / default_bundle()
    bundle.mkdir(parents=True)
    shutil.copy(models["int8"], bundle / "model_int8.tflite")
    proc = invoke("predict", photos / "a.png", "--json", cwd=tmp_path)  # the bundle under the current folder
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["model"] == str(default_bundle() / "model_int8.tflite") and doc["precision"] == "int8"
    monkeypatch.setattr("edgecnn.predict.default_bundle", lambda: tmp_path / "nowhere")
    with pytest.raises(ModelFileError, match="default model .*model_int8.tflite not found.*--model"):
        predict_paths([photos / "a.png"])


def test_invert_option(models, photos, tmp_path):
    from edgecnn.model_card import embed_tflite_card, model_card
    from edgecnn.preprocess import DEFAULT_PREPROCESSING

    model = tmp_path / "dark.tflite"  # auto-invert needs a model that says it was trained on a dark background
    card = model_card([str(i) for i in range(10)], DEFAULT_PREPROCESSING, export_format="tflite", precision="float32")
    model.write_bytes(embed_tflite_card(models["tflite"].read_bytes(), card))
    Image.open(photos / "a.png").point(lambda v: 255 - v).save(tmp_path / "neg.png")
    probs = {}
    for mode in ("auto", "yes", "no"):
        proc = invoke("predict", photos / "a.png", tmp_path / "neg.png", "--model", model, "--json",
                      "--invert", mode)
        assert proc.returncode == 0, proc.stderr
        probs[mode] = [list(i["probabilities"].values()) for i in json.loads(proc.stdout)["images"]]
    assert probs["auto"][0] == probs["auto"][1] == probs["no"][0] == probs["yes"][1]  # the negative comes back
    assert probs["yes"][0] != probs["auto"][0]


def test_plot_writes_one_panel_per_image(models, photos, tmp_path):
    target = tmp_path / "out" / "probs.png"
    proc = invoke("predict", photos, "--model", models["int8"], "--plot", target)
    assert proc.returncode == 0, proc.stderr
    assert f"plot -> {target}" in proc.stdout
    with Image.open(target) as image:
        assert image.format == "PNG" and image.width > 600  # three panels side by side
    assert not [p for p in target.parent.iterdir() if p != target]  # written atomically, no temp left
    proc = invoke("predict", photos, "--model", models["int8"], "--plot", tmp_path / "probs.xyz")
    assert_one_line_error(proc, "probs.xyz", "unknown image type", code=2)


def test_plot_without_matplotlib_is_one_line(models, photos, tmp_path):
    proc = run_cli("predict", photos / "a.png", "--model", models["int8"], "--plot", tmp_path / "p.png",
                   env=without(tmp_path, (*TENSORFLOW, "matplotlib")))
    assert_one_line_error(proc, "matplotlib", "edgecnn[train]", code=2)
    assert not (tmp_path / "p.png").exists()


def test_cli_never_imports_tensorflow_for_exports(models, photos, tmp_path):
    env = without(tmp_path, TENSORFLOW)
    for kind in ("int8", "onnx"):
        proc = run_cli("predict", photos, "--model", models[kind], env=env)
        assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 3, proc.stderr
    proc = run_cli("predict", photos / "a.png", "--model", models["keras"], env=env)
    assert_one_line_error(proc, "tensorflow", "edgecnn[train]", code=2)


def test_library_function_collects_errors(models, photos, tmp_path):
    report = predict_paths([photos / "a.png", tmp_path / "nope.png"], model=models["int8"], top_k=1)
    assert [item.error is None for item in report.images] == [True, False]
    assert len(report.failed) == 1 and len(report.images[0].top) == 1
    with pytest.raises(ModelFileError):
        predict_paths([photos / "a.png"], model=tmp_path / "nope.onnx")


# ----------------------------------------------------------------- end to end, on the reference model

@pytest.fixture(scope="module")
def reference_exports(tmp_path_factory) -> dict[str, Path]:
    """The six exports of the reference model: the bundle's when it has them all, else exported here."""
    bundle = default_bundle()
    names = {}
    if (bundle / MANIFEST_FILE).is_file():
        names = {key: bundle / e["file"] for key, e in read_manifest(bundle)["exports"].items()}
    if len(names) >= 6 and all(p.is_file() for p in names.values()):
        return names
    if not (bundle / "model.keras").is_file():
        pytest.skip("the reference model models/fashion-cnn/model.keras is not trained")
    from edgecnn.export import export_model

    out = tmp_path_factory.mktemp("exports")
    result = export_model(bundle / "model.keras", ["all"], out)
    return {entry.format: entry.file for entry in result.entries}


def _raw_top1(path: Path, x: np.ndarray) -> np.ndarray:
    """Top-1 from the bare runtime (InferenceSession.run / interpreter invoke), quantizing by hand."""
    if path.suffix in (".onnx", ".ort"):  # onnxruntime reads both
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        f = x.astype(np.float32)[..., None] / np.float32(255.0)
        return np.concatenate([session.run(None, {name: f[i:i + 500]})[0].argmax(1) for i in range(0, len(f), 500)])
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    top = np.empty(len(x), dtype=np.int64)
    for i, image in enumerate(x):
        f = image[None, ..., None].astype(np.float32) / np.float32(255.0)
        if inp["dtype"] == np.int8:
            f = np.clip(np.round(f / scale) + zero, -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], f)
        interpreter.invoke()
        top[i] = interpreter.get_tensor(out["index"])[0].argmax()
    return top


@pytest.mark.e2e
@needs_real_data
def test_predictor_top1_equals_the_bare_runtime_on_all_test_images(reference_exports):
    from edgecnn.datasets.fashion_mnist import load_from_dir

    x = load_from_dir(REAL_DATA).x_test
    for name, path in sorted(reference_exports.items()):
        ours = Predictor.load(path).predict(x).argmax(1)
        raw = _raw_top1(path, x)
        print(f"{name}: predictor top-1 == raw top-1 on {np.mean(ours == raw) * 100:.2f}% of {len(x)}")
        assert np.array_equal(ours, raw), name


VARIANTS = {
    "png": lambda a: (Image.fromarray(a), "PNG", {}),
    "jpeg_q95_rgb": lambda a: (Image.fromarray(a).convert("RGB"), "JPEG", {"quality": 95}),
    "upscale_56": lambda a: (Image.fromarray(a).resize((56, 56), Image.Resampling.BICUBIC), "PNG", {}),
    "inverted_rgb": lambda a: (Image.fromarray(255 - a).convert("RGB"), "PNG", {}),
}


@pytest.mark.e2e
@needs_real_data
def test_test_images_as_files_predict_the_arrays_class(reference_exports):
    from edgecnn.datasets.fashion_mnist import load_from_dir

    x = load_from_dir(REAL_DATA).x_test
    sample = x[np.sort(np.random.default_rng(0).choice(len(x), 1000, replace=False))]
    predictor = Predictor.load(reference_exports["tflite-int8"])
    expected = predictor.predict(sample).argmax(1)
    for name, make in VARIANTS.items():
        files = []
        for array in sample:
            image, fmt, options = make(array)
            buffer = io.BytesIO()
            image.save(buffer, fmt, **options)
            files.append(Image.open(io.BytesIO(buffer.getvalue())))
        agreement = float(np.mean(predictor.predict_images(files).argmax(1) == expected))
        print(f"{name}: {agreement * 100:.1f}% predict the array's class")
        assert agreement == 1.0 if name == "png" else agreement >= 0.95, name
