"""The model card inside exported files: written by every exporter, read by the Predictor from a bare file.

A file copied out of its bundle keeps its class names and preprocessing; a file
without a card gets class indices and a note, never Fashion-MNIST's labels.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgecnn.bundle import read_manifest
from edgecnn.errors import ModelFileError
from edgecnn.export import FORMATS
from edgecnn.fileio import sha256_file
from edgecnn.model_card import CARD_NAME, card_json, embed_tflite_card, model_card, read_tflite_card
from edgecnn.runtime import Predictor

from .conftest import TINY_MODELS, blob_images

NAMES = [f"kind {i}" for i in range(10)]  # not Fashion-MNIST's: a label from nowhere else would show
PREPROCESSING = {"height": 28, "width": 28, "channels": 1, "background": "light", "input_range": "0-1",
                 "resize": "stretch", "output": "probabilities"}
CARD = model_card(NAMES, PREPROCESSING, export_format="tflite", precision="float32")


def _outputs(model: bytes, x: np.ndarray) -> bytes:
    """The raw output bytes of one LiteRT run on ``x`` (quantized first for an integer input)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], x.shape)
    interpreter.allocate_tensors()
    if np.issubdtype(inp["dtype"], np.integer):
        scale, zero = inp["quantization"]
        x = np.clip(np.rint(x / scale) + zero, -128, 127).astype(inp["dtype"])
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(out["index"]).tobytes()


def _metadata_names(model: bytes) -> list[str]:
    from ai_edge_litert.tools import flatbuffer_utils

    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    return [entry.name.decode() for entry in tree.metadata]


@pytest.mark.parametrize("kind", ["tflite", "int8"])
def test_the_card_round_trips_and_the_model_computes_the_same_bytes(tiny_models, kind):
    plain = tiny_models[kind].read_bytes()
    assert read_tflite_card(plain) is None and read_tflite_card(tiny_models[kind]) is None
    carded = embed_tflite_card(plain, CARD)
    assert read_tflite_card(carded) == CARD
    x = blob_images(64)[..., None].astype(np.float32) / 255
    assert _outputs(carded, x) == _outputs(plain, x)
    again = embed_tflite_card(carded, {**CARD, "precision": "int8"})  # replaces the entry, keeps the others
    assert read_tflite_card(again)["precision"] == "int8"
    names = _metadata_names(again)
    assert names.count(CARD_NAME) == 1 and set(_metadata_names(plain)) < set(names)
    assert _outputs(again, x) == _outputs(plain, x)


def test_a_carded_bare_tflite_predicts_with_its_own_labels_and_preprocessing(tiny_models, tmp_path):
    path = tmp_path / "mine.tflite"
    path.write_bytes(embed_tflite_card(tiny_models["tflite"].read_bytes(), CARD))
    predictor = Predictor.load(path)
    assert predictor.classes == tuple(NAMES) and predictor.preprocessing == PREPROCESSING
    assert predictor.notes == []
    probs = predictor.predict(blob_images(5))
    assert [row[0].label for row in predictor.classify(blob_images(5))] == [NAMES[i] for i in probs.argmax(1)]


@pytest.mark.parametrize("kind", list(TINY_MODELS))
def test_a_file_without_card_or_manifest_gets_class_indices_and_notes(tiny_models, tmp_path, kind):
    """10 classes of 28x28 images, yet not Fashion-MNIST: nothing says so, so nothing assumes it."""
    path = Path(shutil.copy(tiny_models[kind], tmp_path))
    predictor = Predictor.load(path)
    assert predictor.classes == tuple(str(i) for i in range(10))
    assert predictor.preprocessing == {"height": 28, "width": 28, "channels": 1, "background": None,
                                       "input_range": "0-1", "resize": "center-crop", "output": "probabilities"}
    assert len(predictor.notes) == 2, predictor.notes
    assert predictor.notes[0].startswith(f"{path.name} carries no class names (no edgecnn model card, no matching")
    assert "labels are class indices" in predictor.notes[0] and "carries no preprocessing" in predictor.notes[1]


def _corrupt(model: bytes, replacement: bytes) -> bytes:
    """``model`` with its card's JSON overwritten in place (same length, so the flatbuffer stays valid)."""
    text = card_json(CARD).encode()
    assert model.count(text) == 1 and len(replacement) <= len(text)
    return model.replace(text, replacement.ljust(len(text)))


@pytest.mark.parametrize("replacement, problem", [(b"{not json", "not valid UTF-8 JSON"),
                                                  (b"\xff\xfe", "not valid UTF-8 JSON"),
                                                  (b'["a list"]', "not a JSON object"),
                                                  (b'{"format": "other"}', "not a JSON object")])
def test_a_corrupt_card_is_an_error_when_read_and_a_note_when_predicting(tiny_models, tmp_path, replacement,
                                                                          problem):
    """As with bad ONNX metadata: the Predictor ignores it with a note and describes the file from its shape."""
    path = tmp_path / "broken.tflite"
    path.write_bytes(_corrupt(embed_tflite_card(tiny_models["tflite"].read_bytes(), CARD), replacement))
    with pytest.raises(ModelFileError, match=f"broken.tflite: its {CARD_NAME} is {problem}"):
        read_tflite_card(path)
    predictor = Predictor.load(path)
    assert predictor.classes == tuple(str(i) for i in range(10))
    assert predictor.notes[0].startswith(f"ignoring the model card: {path}: its {CARD_NAME} is {problem}")


def test_a_damaged_flatbuffer_is_a_model_file_error_never_a_crash(tiny_models):
    carded = embed_tflite_card(tiny_models["tflite"].read_bytes(), CARD)
    for data in (b"", b"TFL3", b"\x00" * 8, b"\x04\x00\x00\x00TFL3\xff\xff\xff\xff"):
        with pytest.raises(ModelFileError):
            read_tflite_card(data, name="bad.tflite")
    for cut in np.linspace(8, len(carded) - 1, 40).astype(int):  # a card, None or ModelFileError: nothing else
        try:
            assert read_tflite_card(carded[:cut]) in (CARD, None)
        except ModelFileError:
            pass
    with pytest.raises(ModelFileError, match="not a TFLite flatbuffer"):
        read_tflite_card(tiny_models["onnx"])


# ----------------------------------------------------------------------------- exports


@pytest.fixture(scope="module")
def named_bundle(tiny_models, tmp_path_factory) -> Path:
    """The tiny model exported with its own class names (from the .npz), in each runtime's file types."""
    from edgecnn.export import export_model

    folder = tmp_path_factory.mktemp("named")
    rng = np.random.default_rng(0)
    npz = folder / "images.npz"
    np.savez(npz, x=rng.integers(0, 256, (64, 28, 28), dtype=np.uint8), x_test=blob_images(20),
             y_test=rng.integers(0, 10, 20), class_names=np.array(NAMES))
    export_model(tiny_models["keras"], ["tflite", "tflite-int8", "onnx", "onnx-ort-int8"], folder / "bundle",
                 calibration_samples=32, data=npz)
    return folder / "bundle"


def test_every_export_carries_its_card_and_the_manifest_hashes_the_final_file(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    assert set(manifest["exports"]) == set(FORMATS)
    for name, entry in manifest["exports"].items():
        path = tiny_bundle / entry["file"]
        assert sha256_file(path) == entry["sha256"] and path.stat().st_size == entry["bytes"], name
        if path.suffix == ".tflite":
            card = read_tflite_card(path)
        else:
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            card = json.loads(session.get_modelmeta().custom_metadata_map[CARD_NAME])
        assert card == model_card(manifest["class_names"], manifest["preprocessing"], export_format=name,
                                  precision=FORMATS[name].precision), name


def test_bare_exports_copied_out_of_their_bundle_keep_labels_and_preprocessing(named_bundle, tmp_path):
    manifest = read_manifest(named_bundle)
    assert manifest["class_names"] == NAMES
    x = blob_images(30)
    for name, entry in manifest["exports"].items():
        in_bundle = Predictor.load(named_bundle / entry["file"])
        bare = Predictor.load(shutil.copy(named_bundle / entry["file"], tmp_path / f"copy-{entry['file']}"))
        assert bare.classes == tuple(NAMES) and bare.notes == [], (name, bare.notes)
        assert bare.preprocessing == in_bundle.preprocessing and bare.precision == in_bundle.precision, name
        assert np.array_equal(bare.predict(x), in_bundle.predict(x)), name


def test_the_reference_bundle_without_cards_still_gets_its_labels_from_its_manifest(monkeypatch):
    """Exported before cards existed (to be regenerated by the integrator): its manifest still describes its files."""
    from .helpers import REPO

    # on a CPU of another class than the exporting one, a note says so (tests/test_cpu_class.py): not this test's
    monkeypatch.setattr("edgecnn.runtime.cpu_notes", lambda *args: [])
    bundle = REPO / "models" / "fashion-cnn"
    if not (bundle / "manifest.json").is_file():
        pytest.skip("no committed reference bundle")
    manifest = read_manifest(bundle)
    for name in ("tflite-int8", "onnx"):
        path = bundle / manifest["exports"][name]["file"]
        predictor = Predictor.load(path)
        assert predictor.classes == tuple(manifest["class_names"]) and predictor.notes == [], name
        assert predictor.preprocessing["background"] == "dark" and predictor.preprocessing["resize"] == "fit"


def test_cards_are_written_and_read_on_the_base_install(tiny_models, tmp_path):
    """Embedding needs LiteRT's flatbuffer tools only: a device without TensorFlow can re-label a file."""
    import textwrap

    from .helpers import TENSORFLOW, extra_modules, run_python, without

    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from edgecnn.model_card import embed_tflite_card, model_card, read_tflite_card
        card = model_card(["a"] * 10, {{}}, export_format="tflite", precision="float32")
        assert read_tflite_card(embed_tflite_card(Path({str(tiny_models['tflite'])!r}).read_bytes(), card)) == card
        print(sorted(m for m in sys.modules if m.partition(".")[0] in {extra_modules('train')!r}))
    """)
    proc = run_python(script, env=without(tmp_path, TENSORFLOW))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
