"""The Predictor over LiteRT, ONNX Runtime and Keras, on the session's tiny models (conftest.make_tiny_models).

The exports are made there without edgecnn.export, so the predictor is tested
on its own: fp32 and full-int8 (int8 in/out) TFLite, and an ONNX model with a
dynamic batch, all from one small Keras CNN.
"""
from __future__ import annotations

import json
import re
import shutil
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from edgecnn.fileio import sha256_file
from edgecnn.preprocess import to_model_input
from edgecnn.errors import ModelFileError
from edgecnn.runtime import BACKENDS, Backend, Predictor

from .conftest import TINY_EXPORTS, TINY_MODELS, blob_images
from .helpers import TENSORFLOW, run_python, without


@pytest.fixture
def models(tiny_models) -> dict[str, Path]:
    return tiny_models


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return blob_images(300)


EXPORTS = TINY_EXPORTS
#: What each tiny model is: its backend and precision.
EXPECTED = {"tflite": ("litert", "float32"), "int8": ("litert", "int8"), "onnx": ("onnxruntime", "float32"),
            "ort": ("onnxruntime", "float32"), "keras": ("keras", "float32")}


#: The tiny models carry no card and have no manifest: their labels are class indices.
INDICES = tuple(str(i) for i in range(10))


def test_every_backend_is_tested_on_a_tiny_model():
    """A runtime added to BACKENDS needs a tiny model (conftest.TINY_MODELS) and an EXPECTED row here."""
    assert {Path(file).suffix for file in TINY_MODELS.values()} == set(BACKENDS)
    assert set(EXPECTED) == set(TINY_MODELS)


@pytest.mark.parametrize("kind", list(TINY_MODELS))
def test_load_picks_the_backend_and_reads_the_model(models, kind):
    predictor = Predictor.load(models[kind])
    assert (predictor.backend, predictor.precision) == EXPECTED[kind]
    assert predictor.input_shape == (28, 28, 1) and predictor.path == models[kind]


@pytest.mark.parametrize("kind", list(TINY_MODELS))
def test_predict_takes_any_batch_and_layout(models, images, kind):
    predictor = Predictor.load(models[kind])
    full = predictor.predict(images)  # 300 > every backend's max batch: chunked
    assert full.shape == (300, 10) and full.dtype == np.float32
    assert np.allclose(full.sum(axis=1), 1.0, atol=0.02)
    # the exports give bit-identical rows whatever the batch; TensorFlow's kernels vary in the last bits
    same = np.array_equal if kind != "keras" else lambda a, b: np.allclose(a, b, rtol=1e-4, atol=1e-7)
    for n in (1, 2, 7):
        assert same(predictor.predict(images[:n]), full[:n]), n
    assert same(predictor.predict(images[:5, :, :, None]), full[:5])
    assert same(predictor.predict(images[:5].astype(np.float32) / np.float32(255.0)), full[:5])
    assert same(predictor.predict(images[:5].astype(np.float64) / 255.0), full[:5])


def test_int8_predictor_quantizes_with_the_models_own_parameters(models, images):
    """Bit-for-bit what a hand-written interpreter loop gives, one image per invoke."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(models["int8"]))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    (in_scale, in_zero), (out_scale, out_zero) = inp["quantization"], out["quantization"]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    x = to_model_input(images, (28, 28, 1))
    raw = []
    for image in x:
        q = np.clip(np.round(image[None] / in_scale) + in_zero, -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], q)
        interpreter.invoke()
        raw.append((interpreter.get_tensor(out["index"]).astype(np.float32) - out_zero) * np.float32(out_scale))
    assert np.array_equal(Predictor.load(models["int8"]).predict(images), np.concatenate(raw))


def test_onnx_predictor_is_the_bare_session(models, images):
    import onnxruntime as ort

    session = ort.InferenceSession(str(models["onnx"]), providers=["CPUExecutionProvider"])
    raw = session.run(None, {"input": to_model_input(images, (28, 28, 1))})[0]
    assert np.array_equal(Predictor.load(models["onnx"]).predict(images), raw)


def test_backends_agree_and_int8_stays_close(models, images):
    probs = {kind: Predictor.load(models[kind]).predict(images) for kind in TINY_MODELS}
    for kind in ("tflite", "onnx"):
        assert np.abs(probs[kind] - probs["keras"]).max() < 1e-5, kind
    assert np.abs(probs["int8"] - probs["keras"]).max() < 0.1
    assert (probs["int8"].argmax(1) == probs["keras"].argmax(1)).mean() > 0.9
    assert len(set(probs["keras"].argmax(1))) > 3  # the tiny model is not constant


def test_prepare_and_run_native_are_the_raw_path(models, images):
    predictor = Predictor.load(models["int8"])
    native = predictor.prepare(images[:1])
    assert native.dtype == np.int8 and native.shape == (1, 28, 28, 1)
    assert np.array_equal(native, predictor.prepare(to_model_input(images[:1], (28, 28, 1))))  # fast path == general path
    assert predictor.runtime.run_native(native).dtype == np.int8
    assert predictor.runtime.input_quant is not None and predictor.runtime.output_quant is not None


@pytest.mark.parametrize("kind", EXPORTS)
def test_float_fast_path_equals_the_checked_general_path(models, images, kind):
    """float32 batches of the model's shape take a one-pass check; the result is the general path's, bit for bit."""
    predictor = Predictor.load(models[kind])
    floats = images[:6].astype(np.float32) / np.float32(255.0)
    floats[0, 0, :4] = [0.0, 1.0, np.nextafter(np.float32(1), np.float32(0)), np.float32(1e-38)]  # the edges
    general = predictor.runtime.run_native(predictor._to_native(to_model_input(floats, (28, 28, 1))))
    assert np.array_equal(predictor._from_floats(floats), predictor._to_native(to_model_input(floats, (28, 28, 1))))
    assert np.array_equal(predictor.predict(floats), predictor.predict(floats.astype(np.float64)))  # general path
    assert predictor.runtime.run_native(predictor._from_floats(floats)).tobytes() == general.tobytes()
    negative_zero = floats.copy()
    negative_zero[0, 0, 0] = -0.0  # refused by the bit check, accepted by the general path
    assert predictor._from_floats(negative_zero) is None
    assert np.array_equal(predictor.predict(negative_zero), predictor.predict(floats))
    for bad in (np.inf, -np.inf, np.nan, -1e-30, 1.0000001):
        wrong = floats.copy()
        wrong[1, 5, 5] = bad
        assert predictor._from_floats(wrong) is None, bad
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            predictor.predict(wrong)


def test_classify_ranks_labels(models, images):
    predictor = Predictor.load(models["onnx"])
    probs = predictor.predict(images[:4])
    ranked = predictor.classify(images[:4], top_k=3)
    assert len(ranked) == 4 and all(len(row) == 3 for row in ranked)
    for row, p in zip(ranked, probs):
        label, prob = row[0]
        assert label == INDICES[int(p.argmax())] and prob == pytest.approx(float(p.max()))
        assert [r.probability for r in row] == sorted((r.probability for r in row), reverse=True)
    assert len(predictor.classify(images[:1], top_k=50)[0]) == 10
    with pytest.raises(ValueError, match="top_k"):
        predictor.classify(images[:1], top_k=0)


@pytest.mark.parametrize("bad, needle", [
    (np.zeros((28, 28), np.uint8), "got (28, 28)"),
    (np.zeros((2, 32, 32), np.uint8), "got (2, 32, 32)"),
    (np.zeros((2, 28, 28, 3), np.uint8), "got (2, 28, 28, 3)"),
    (np.zeros((0, 28, 28), np.uint8), "N >= 1"),
    (np.zeros((2, 28, 28), np.int64), "got dtype int64"),
    (np.full((2, 28, 28), 2.0, np.float32), "got values in [2, 2]"),
    (np.full((1, 28, 28), np.nan, np.float32), "[0, 1]"),
])
def test_wrong_arrays_raise_value_errors_saying_expected_and_given(models, bad, needle):
    for kind in EXPORTS:
        with pytest.raises(ValueError) as caught:
            Predictor.load(models[kind]).predict(bad)
        assert "expected" in str(caught.value) and needle in str(caught.value), (kind, str(caught.value))


@pytest.mark.parametrize("kind", list(TINY_MODELS))
def test_one_predictor_shared_by_eight_threads_equals_sequential(models, images, kind):
    predictor = Predictor.load(models[kind])
    batches = [images[i:i + n] for i, n in zip(range(0, 300, 10), [1, 3, 10, 1, 7, 2, 10, 5] * 4)] * 2
    sequential = [predictor.predict(b) for b in batches]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(predictor.predict, batches))
    assert all(np.array_equal(a, b) for a, b in zip(sequential, parallel))


def _corrupt(models, tmp_path, kind, change):
    target = tmp_path / models[kind].name
    target.write_bytes(change(models[kind].read_bytes()))
    return target


@pytest.mark.parametrize("kind, change, needle", [
    ("tflite", lambda b: b[: len(b) // 2], "corrupt, truncated or not TFLite"),
    ("int8", lambda b: b"garbage" * 100, "corrupt, truncated or not TFLite"),
    ("onnx", lambda b: b[: len(b) // 2], "corrupt, truncated or not ONNX"),
    ("onnx", lambda b: b"\x00garbage" * 50, "corrupt, truncated or not ONNX"),
    ("tflite", lambda b: b"", "empty (0 bytes)"),
    ("keras", lambda b: b[: len(b) // 2], "not a valid .keras file"),
])
def test_bad_model_files_raise_one_line_model_file_errors(models, tmp_path, kind, change, needle):
    path = _corrupt(models, tmp_path, kind, change)
    with pytest.raises(ModelFileError) as caught:
        Predictor.load(path)
    message = str(caught.value)
    assert needle in message and str(path) in message and "\n" not in message
    assert caught.value.exit_code == 2


def test_missing_file_and_unknown_extension(models, tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        Predictor.load(tmp_path / "absent.tflite")
    other = tmp_path / "model.pb"
    shutil.copy(models["tflite"], other)
    expected = re.escape(f"unknown model type '.pb' (expected one of {', '.join(BACKENDS)})")
    with pytest.raises(ModelFileError, match=expected):
        Predictor.load(other)
    with pytest.raises(ValueError, match="threads"):
        Predictor.load(models["tflite"], threads=0)


class FakeBackend(Backend):
    """A runtime in a few lines: uniform probabilities, or a failure when the file says "broken"."""

    name = "fake"

    def __init__(self, path: Path, *, threads=None, providers=None) -> None:
        self.path, self.input_shape, self.num_classes = path, (28, 28, 1), 10
        self.input_dtype = self.output_dtype = np.dtype(np.float32)
        self.metadata, self.precision = {}, "float32"
        self._broken = path.read_bytes() == b"broken"

    def run_native(self, x: np.ndarray) -> np.ndarray:
        if self._broken:
            raise RuntimeError("Node number 3 (CONV_2D) failed to prepare.\nsecond line")
        return np.full((len(x), 10), 0.1, dtype=np.float32)


def test_a_runtime_is_one_class_and_one_registry_line(tmp_path, monkeypatch):
    monkeypatch.setitem(BACKENDS, ".fake", f"{__name__}:FakeBackend")
    (tmp_path / "ok.fake").write_bytes(b"fine")
    predictor = Predictor.load(tmp_path / "ok.fake")
    assert predictor.backend == "fake" and predictor.classify(np.zeros((2, 28, 28), np.uint8))[1][0].label == "0"
    (tmp_path / "bad.fake").write_bytes(b"broken")  # loads, but fails on its first run: a model error, at load
    with pytest.raises(ModelFileError, match=r"bad.fake loads but cannot run \(corrupt\?\): .*failed to prepare.$"):
        Predictor.load(tmp_path / "bad.fake")


def _bundle(models, tmp_path, manifest: dict | str) -> Path:
    folder = tmp_path / "bundle"
    folder.mkdir()
    shutil.copy(models["int8"], folder / "model_int8.tflite")
    (folder / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return folder / "model_int8.tflite"


def _entry(file: str, precision: str, content: Path | None = None) -> dict:
    """A manifest entry; it describes ``content``'s bytes (a file it does not describe without it)."""
    digest = sha256_file(content) if content is not None else "0" * 64
    return {"file": file, "format": "tflite-int8", "precision": precision, "sha256": digest}


def test_class_names_and_precision_come_from_the_manifest(models, tmp_path):
    names = [f"kind {i}" for i in range(10)]
    path = _bundle(models, tmp_path, {"schema": 1, "class_names": names, "exports": {
        "tflite-int8": _entry("model_int8.tflite", "int8-per-channel", models["int8"]),
        "tflite": _entry("model_fp32.tflite", "float32")},
        "preprocessing": {"height": 28, "width": 28, "channels": 1, "scale": 1 / 255, "background": "light"}})
    predictor = Predictor.load(path)
    assert predictor.classes == tuple(names) and predictor.precision == "int8-per-channel"
    assert predictor.preprocessing["background"] == "light"
    assert predictor.classify(np.zeros((1, 28, 28), np.uint8))[0][0].label in names


def test_manifest_problems(models, tmp_path):
    path = _bundle(models, tmp_path, {"schema": 1, "class_names": ["a", "b"],
                                      "exports": {"x": _entry("model_int8.tflite", "int8", models["int8"])}})
    with pytest.raises(ModelFileError, match="lists 2 class names but .* has 10 outputs"):
        Predictor.load(path)
    (path.parent / "manifest.json").write_text("{ not json")
    predictor = Predictor.load(path)  # a broken manifest does not stop prediction: defaults, and a note why
    assert predictor.classes == INDICES and "manifest" in predictor.notes[0]
    (path.parent / "manifest.json").write_text(json.dumps({"class_names": ["a"] * 10, "exports": {}}))
    assert Predictor.load(path).classes == INDICES  # the manifest does not describe this file


def test_a_replaced_file_does_not_inherit_the_manifest_entry_of_its_name(models, tmp_path):
    names = [f"kind {i}" for i in range(10)]
    path = _bundle(models, tmp_path, {"schema": 1, "class_names": names, "exports": {
        "tflite-int8": _entry("model_int8.tflite", "int8-per-channel", models["int8"])}})
    assert Predictor.load(path).classes == tuple(names)
    shutil.copy(models["tflite"], path)  # another model under the listed name: its bytes are not the entry's
    predictor = Predictor.load(path)
    assert predictor.classes != tuple(names) and predictor.precision == "float32"
    assert any("sha256 differs" in note for note in predictor.notes), predictor.notes


def test_onnx_metadata_gives_class_names(models, tmp_path):
    import onnx

    proto = onnx.load(models["onnx"])
    names = [f"label {i}" for i in range(10)]
    onnx.helper.set_model_props(proto, {"class_names": json.dumps(names),
                                        "preprocessing": json.dumps({"background": "dark", "scale": 1 / 255})})
    onnx.save(proto, tmp_path / "meta.onnx")
    predictor = Predictor.load(tmp_path / "meta.onnx")
    assert predictor.classes == tuple(names) and predictor.preprocessing["background"] == "dark"


def test_onnx_and_tflite_never_import_tensorflow(models, tmp_path):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)).save(tmp_path / "one.png")
    script = textwrap.dedent(f"""
        import sys
        try:
            import tensorflow
        except ImportError:
            pass
        else:
            raise SystemExit("the blocker did not work")
        import numpy as np
        import edgecnn
        x = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
        for path in {[str(models[kind]) for kind in EXPORTS]!r}:
            predictor = edgecnn.Predictor.load(path)
            assert predictor.predict(x).shape == (3, 10)
            assert predictor.predict_images([{str(tmp_path / 'one.png')!r}]).shape == (1, 10)
        from edgecnn import cli, predict
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        try:
            edgecnn.Predictor.load({str(models['keras'])!r})
        except edgecnn.EdgecnnError as exc:
            print(exc)
    """)
    proc = run_python(script, env=without(tmp_path, TENSORFLOW), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'edgecnn[train]'" in proc.stdout  # .keras names the extra that brings TensorFlow
