"""`edgecnn web`: the static app, its bad input, and (headless Chromium) the page against the Python Predictor."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.datasets.fashion_mnist import load_dataset
from edgecnn.errors import EdgecnnError
from edgecnn.runtime import Predictor
from edgecnn.web import ORT_WEB_FILES, build_web_app, serving

from .conftest import assert_one_line_error, run_cli
from .helpers import run_python, without
from .test_browser import browser  # noqa: F401 - the shared headless Chromium fixture
from .test_web_preprocess import contract_input, photo, softmax

FAITHFUL_IMAGES = 20
ARTIFACTS = Path(os.environ.get("EDGECNN_TEST_ARTIFACTS", "")) if os.environ.get("EDGECNN_TEST_ARTIFACTS") else None

needs_ort_web = pytest.mark.skipif(not all((Path(__file__).resolve().parents[1] / "node_modules" / "onnxruntime-web"
                                            / "dist" / f).is_file() for f in ORT_WEB_FILES),
                                   reason="onnxruntime-web not installed (npm ci)")


@pytest.fixture(scope="module")
def apps(tiny_bundle, tiny_data, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("web")
    return {model: build_web_app(tiny_bundle, root / model, model=model, data=tiny_data).folder
            for model in ("onnx", "onnx-int8")}


@needs_ort_web
def test_the_folder_is_self_contained_and_served_with_the_right_types(apps, tiny_bundle):
    folder = apps["onnx"]
    config = json.loads((folder / "config.json").read_text())
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert config["class_names"] == manifest["class_names"] and config["preprocessing"] == manifest["preprocessing"]
    assert (folder / config["model"]["file"]).read_bytes() == (tiny_bundle / "model_fp32.onnx").read_bytes()
    assert len(config["samples"]) == 6 and all((folder / s["file"]).is_file() for s in config["samples"])
    assert all((folder / "ort" / name).is_file() for name in ORT_WEB_FILES)
    with serving(folder) as url:
        assert url.startswith("http://127.0.0.1:")
        for name, mime in (("ort/ort-wasm-simd-threaded.wasm", "application/wasm"), ("app.js", "text/javascript"),
                           ("ort/ort.wasm.min.mjs", "text/javascript"), ("config.json", "application/json")):
            with urllib.request.urlopen(url + name) as response:
                assert response.headers["Content-Type"].split(";")[0] == mime, name


def test_bad_input_is_one_line(tiny_bundle, tmp_path):
    no_onnx = Path(shutil.copytree(tiny_bundle, tmp_path / "b"))
    manifest = json.loads((no_onnx / "manifest.json").read_text())
    manifest["exports"] = {k: v for k, v in manifest["exports"].items() if k.startswith("tflite")}
    (no_onnx / "manifest.json").write_text(json.dumps(manifest))
    a_file = tmp_path / "taken.txt"
    a_file.write_text("x")
    cases = [([no_onnx, "--out", tmp_path / "w1"], "lists no ONNX export"),
             ([tiny_bundle, "--out", a_file], "is a file, expected a folder")]
    for args, needle in cases:
        assert_one_line_error(run_cli("web", *args), needle, code=2)
    proc = run_cli("web", tiny_bundle, "--out", tmp_path / "w2", env={"EDGECNN_ORT_WEB_DIR": str(tmp_path / "none")})
    assert_one_line_error(proc, "onnxruntime-web is not installed", "npm ci", code=2)
    with pytest.raises(EdgecnnError, match="has no onnx-int8 export"):
        only_fp32 = Path(shutil.copytree(tiny_bundle, tmp_path / "c"))
        m = json.loads((only_fp32 / "manifest.json").read_text())
        del m["exports"]["onnx-int8"]
        (only_fp32 / "manifest.json").write_text(json.dumps(m))
        build_web_app(only_fp32, tmp_path / "w3", model="onnx-int8")


def open_page(driver, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.body.dataset.ready") in ("true", "error"))
    assert driver.execute_script("return document.body.dataset.ready") == "true", driver.find_element("id", "status").text


def classify_in_page(driver, url: str) -> dict:
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.edgecnn.classifyUrl(arguments[0]).then(done, e => done({error: String(e)}));", url)


@pytest.mark.browser
@needs_ort_web
@pytest.mark.parametrize("model", ["onnx", "onnx-int8"])
def test_the_page_predicts_like_the_python_predictor(browser, apps, tiny_data, model, tmp_path_factory):  # noqa: F811
    """20 test images as PNG files through the page's own JS preprocessing, against Predictor on the same file.

    The images are at the model's size (28x28), so no resize happens: Pillow's Lanczos and the JS port of it
    are not compared here; grayscale, auto-invert and scaling are.
    """
    folder = apps[model]
    (folder / "faithful").mkdir(exist_ok=True)
    x = load_dataset(tiny_data).x_test[:FAITHFUL_IMAGES]
    pngs = []
    for i, image in enumerate(x):
        pngs.append(folder / "faithful" / f"{i}.png")
        Image.fromarray(image, "L").save(pngs[-1])
    config = json.loads((folder / "config.json").read_text())
    expected = Predictor.load(folder / config["model"]["file"]).predict_images(pngs)
    browser.set_window_size(1000, 900)
    with serving(folder) as url:
        open_page(browser, url)
        first = browser.find_element("id", "answer").text
        shot = tmp_path_factory.mktemp("artefacts") / f"web-{model}.png"
        shot.write_bytes(browser.get_screenshot_as_png())
        if ARTIFACTS:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, ARTIFACTS / shot.name)
        got = []
        for png in pngs:
            result = classify_in_page(browser, f"faithful/{png.name}")
            assert "error" not in result, result
            got.append(result["probs"])
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    assert any(name in first for name in config["class_names"]) and "%" in first, first  # a prediction on load
    got = np.array(got, dtype=np.float32)
    assert got.shape == expected.shape
    if model == "onnx":
        assert np.abs(got - expected).max() <= 1e-4, np.abs(got - expected).max()
    else:  # int8 kernels of wasm and MLAS may round apart: the tiny, untrained model's near-ties can flip
        assert np.abs(got - expected).max() <= 2e-2, np.abs(got - expected).max()
        top2 = np.sort(expected, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-3
        assert np.array_equal(got.argmax(1)[clear], expected.argmax(1)[clear])
    assert Image.open(shot).convert("L").getextrema()[1] - Image.open(shot).convert("L").getextrema()[0] > 100


@pytest.mark.browser
@needs_ort_web
def test_bench_adds_browser_rows_beside_the_native_ones(tiny_bundle, tmp_path, monkeypatch):
    from edgecnn import bench as lib

    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "b"))
    files = [bundle / "model_fp32.onnx", bundle / "model_int8.onnx"]
    report = lib.bench(files, batch_sizes=(1,), threads=(1,), runs=30, warmup=3, progress=False, browser=True)
    browser_rows = {r["name"]: r for r in report.results if r["mode"] == "browser/wasm"}
    assert set(browser_rows) == {"onnx", "onnx-int8"} and not report.notes
    for row in browser_rows.values():
        assert row["backend"] == "onnxruntime-web" and row["batch_size"] == 1 and 0 < row["latency_s"]["p50"] < 1
    assert {r["name"] for r in report.results if r["mode"] == "raw"} == {"onnx", "onnx-int8"}
    assert "browser/wasm" in report.table()
    monkeypatch.setenv("EDGECNN_ORT_WEB_DIR", str(tmp_path / "none"))
    report = lib.bench(files[:1], batch_sizes=(1,), threads=(1,), runs=5, warmup=1, progress=False, browser=True)
    assert [r["mode"] for r in report.results] == ["predictor", "raw"]
    assert any(n.startswith("no browser rows: onnxruntime-web is not installed") for n in report.notes), report.notes


@needs_ort_web
def test_serve_builds_prints_the_url_and_serves_on_localhost(tiny_bundle, tiny_data, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "app"
    proc = subprocess.Popen([sys.executable, "-m", "edgecnn", "web", tiny_bundle, "--out", out, "--data-dir", tiny_data,
                             "--serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[0].startswith(f"web app -> {out} (onnx, 6 sample images"), lines
        url = lines[1].split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/"), lines
        with urllib.request.urlopen(url) as response:
            assert b"<script type=\"module\" src=\"app.js\">" in response.read()
        with urllib.request.urlopen(url + "ort/ort-wasm-simd-threaded.wasm") as response:
            assert response.headers["Content-Type"] == "application/wasm"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    with pytest.raises(EdgecnnError, match="has no index.html"):
        from edgecnn.web import serve

        serve(out / "samples", port=0)


@pytest.mark.browser
@needs_ort_web
def test_the_page_resizes_other_sizes_like_pillow(browser, apps, tiny_data):  # noqa: F811
    """Images not at the model's size: trim, Lanczos resize and centring in JS against load_image (within 1 level)."""
    from edgecnn.preprocess import load_image

    folder = apps["onnx"]
    x = load_dataset(tiny_data).x_test[0]
    light = Image.eval(Image.fromarray(x, "L").resize((90, 70), Image.Resampling.BILINEAR), lambda v: 255 - v)
    images = {"light-bg.png": (light, 255), "rgb-tall.png": (Image.fromarray(x, "L").convert("RGB").resize((200, 300)), (0, 0, 0))}
    for name, (image, background) in images.items():
        canvas = Image.new(image.mode, (image.width + 40, image.height + 20), background)
        canvas.paste(image, (25, 5))
        canvas.save(folder / name)
    with serving(folder) as url:
        open_page(browser, url)
        for name in images:
            result = classify_in_page(browser, name)
            assert "error" not in result, result
            page = np.array(result["input"], dtype=np.float32).reshape(28, 28)
            assert np.abs(page - load_image(folder / name)).max() <= 1 / 255 + 1e-7, name


def rgb_logits_bundle(folder: Path) -> Path:
    """A bundle no Fashion-MNIST code fits: a tiny 24x32 RGB ONNX model (NHWC, 5 logits), preprocessing
    center-crop and 0-255, and a test_set.npz of uint8 images (the page's sample images)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    conv = rng.normal(0, 1 / 255, (6, 3, 5, 5))
    weights = {"conv_w": conv - conv.mean(axis=(1, 2, 3), keepdims=True), "conv_b": np.zeros(6),  # edge detectors
               "fc_w": rng.normal(0, 8, (6, 5)), "fc_b": np.zeros(5)}
    nodes = [helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["nchw", "conv_w", "conv_b"], ["conv"], strides=[2, 2]),
             helper.make_node("Relu", ["conv"], ["relu"]),
             helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
             helper.make_node("Flatten", ["pool"], ["flat"]),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"])]
    graph = helper.make_graph(nodes, "tiny_rgb", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 24, 32, 3])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])],
                              [numpy_helper.from_array(w.astype(np.float32), name) for name, w in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    folder.mkdir(parents=True)
    onnx.save(model, folder / "model.onnx")
    names = ["circle", "square", "star", "ring", "cross"]
    preprocessing = {"height": 24, "width": 32, "channels": 3, "background": None, "input_range": "0-255",
                     "resize": "center-crop", "output": "logits"}
    x = np.stack([np.asarray(photo(32, 24, seed=s)) for s in range(10)])
    np.savez(folder / "test_set.npz", x_test=x, y_test=np.arange(10) % 5)
    (folder / "manifest.json").write_text(json.dumps({
        "schema": 1, "class_names": names, "preprocessing": preprocessing,
        "data": {"kind": "folders", "source": "generated photos", "test_set_file": "test_set.npz",
                 "test_set_sha256": hashlib.sha256((folder / "test_set.npz").read_bytes()).hexdigest()},
        "exports": {"onnx": {"file": "model.onnx", "format": "onnx", "precision": "float32",
                             "sha256": hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()}}}))
    return folder


def test_samples_come_from_the_bundle_test_set_or_are_left_out(tmp_path):
    bundle = rgb_logits_bundle(tmp_path / "rgb")
    app = build_web_app(bundle, tmp_path / "web")
    config = json.loads((app.folder / "config.json").read_text())
    assert [s["label"] for s in config["samples"]] == ["circle", "square", "star", "ring", "cross"]
    assert Image.open(app.folder / config["samples"][1]["file"]).size == (32, 24)
    (bundle / "test_set.npz").unlink()  # a model Fashion-MNIST does not fit and no test set: a page without samples
    assert build_web_app(bundle, tmp_path / "web2").samples == 0
    np.savez(bundle / "test_set.npz", x_test=np.zeros((2, 24, 32, 3), np.uint8), y_test=np.array([0, 7]))
    with pytest.raises(EdgecnnError, match=r"test_set.npz does not match the sha256 in its manifest"):
        build_web_app(bundle, tmp_path / "web3")  # an altered copy fails before anything is written
    assert not (tmp_path / "web3").exists()


@pytest.mark.browser
@needs_ort_web
def test_the_page_follows_a_bundles_own_preprocessing(browser, tmp_path):  # noqa: F811
    """center-crop, 0-255 input and logits on an RGB model, with images of other sizes: the page's input against
    the contract written with Pillow (within a grey level), its probabilities against onnxruntime + softmax."""
    import onnxruntime as ort

    bundle = rgb_logits_bundle(tmp_path / "rgb")
    folder = build_web_app(bundle, tmp_path / "web").folder
    config = json.loads((folder / "config.json").read_text())
    for name, (w, h, seed) in {"wide.png": (80, 37, 11), "tall.png": (30, 61, 12), "square.png": (64, 64, 13)}.items():
        photo(w, h, seed=seed).save(folder / name)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    files = [s["file"] for s in config["samples"]] + ["wide.png", "tall.png", "square.png"]
    with serving(folder) as url:
        open_page(browser, url)
        first = browser.find_element("id", "answer").text
        results = [classify_in_page(browser, f) for f in files]
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    assert any(name in first for name in config["class_names"]) and "%" in first, first
    for file, result in zip(files, results):
        assert "error" not in result, (file, result)
        want = contract_input(Image.open(folder / file), config["preprocessing"])
        page_input = np.array(result["input"], dtype=np.float32).reshape(want.shape)
        if file.startswith("samples/"):
            np.testing.assert_array_equal(page_input, want)  # the model's size: taken as it is
        else:
            assert np.abs(page_input - want).max() <= 1.0, file
        expected = softmax(session.run(None, {"input": page_input[np.newaxis]})[0])[0]
        assert np.abs(np.array(result["probs"], dtype=np.float32) - expected).max() <= 1e-4, file
        assert abs(sum(result["probs"]) - 1) < 1e-5
    assert len({int(np.argmax(r["probs"])) for r in results}) > 1  # the images move the answer


def test_the_browser_benchmark_names_the_train_extra_when_selenium_is_missing(tmp_path):
    """selenium comes with the train extra (the export and bench tooling), and the one-line error says so."""
    proc = run_python("from edgecnn.web.browser import chromium\n"
                      "try:\n    chromium().__enter__()\nexcept Exception as exc:\n    print(type(exc).__name__, exc)",
                      env=without(tmp_path, ("selenium",)))
    assert proc.stdout.startswith("MissingExtraError the browser benchmark needs selenium"), proc.stdout + proc.stderr
    assert "pip install 'edgecnn[train]'" in proc.stdout and len(proc.stdout.strip().splitlines()) == 1
