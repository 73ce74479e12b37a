"""`edgecnn web`: the static app, its bad input, and (headless Chromium) the page against the Python Predictor."""
from __future__ import annotations

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
from .test_browser import browser  # noqa: F401 - the shared headless Chromium fixture

FAITHFUL_IMAGES = 20
ARTIFACTS = Path(os.environ.get("EDGECNN_TEST_ARTIFACTS", "")) if os.environ.get("EDGECNN_TEST_ARTIFACTS") else None

needs_ort_web = pytest.mark.skipif(not all((Path(__file__).resolve().parents[1] / "node_modules" / "onnxruntime-web"
                                            / "dist" / f).is_file() for f in ORT_WEB_FILES),
                                   reason="onnxruntime-web not installed (npm ci)")


@pytest.fixture(scope="module")
def apps(tiny_bundle, tiny_data, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("web")
    return {model: build_web_app(tiny_bundle, root / model, model=model, data_dir=tiny_data).folder
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
    else:
        assert np.array_equal(got.argmax(1), expected.argmax(1))
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
