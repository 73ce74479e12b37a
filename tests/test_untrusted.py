"""Untrusted model and data files: refused cleanly, and no loading path runs code from a file.

A model file is code-adjacent: a ``.keras`` config names Python objects, a
``.npy``/``.npz`` can carry pickles. edgecnn loads Keras files in safe mode
(``--unsafe`` is the only way around it), numpy arrays with
``allow_pickle=False``, and refuses ONNX/TFLite files that do not parse.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgecnn.errors import EdgecnnError, ModelFileError
from edgecnn.export import FORMATS
from edgecnn.fileio import sha256_file

from .helpers import REPO, TENSORFLOW, assert_one_line_error, invoke, run_cli, without
from .test_bad_input import lambda_model


@pytest.fixture(scope="module")
def lambda_keras(tmp_path_factory) -> Path:
    return lambda_model(tmp_path_factory.mktemp("lambda"))


@pytest.fixture
def image(tmp_path) -> Path:
    from PIL import Image

    path = tmp_path / "shirt.png"
    Image.fromarray(np.zeros((28, 28), np.uint8), "L").save(path)
    return path


# ------------------------------------------------------------ Lambda layers


def test_summary_refuses_a_lambda_layer_unless_unsafe(lambda_keras, tmp_path):
    refused = invoke("summary", "--model", lambda_keras, "--out", tmp_path)
    assert_one_line_error(refused, str(lambda_keras), "Lambda", "--unsafe", code=2)
    trusted = invoke("summary", "--model", lambda_keras, "--out", tmp_path, "--unsafe")
    assert trusted.returncode == 0, trusted.stderr
    assert "Lambda" in trusted.stdout


def test_export_refuses_a_lambda_layer(lambda_keras, tmp_path):
    proc = invoke("export", "--model", lambda_keras, "--out", tmp_path / "out", "--format", "tflite")
    assert_one_line_error(proc, str(lambda_keras), "Lambda", code=2)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_predict_refuses_a_lambda_layer(lambda_keras, image):
    assert_one_line_error(invoke("predict", image, "--model", lambda_keras), str(lambda_keras), "Lambda", code=2)


def test_predictor_and_verify_refuse_a_lambda_layer(lambda_keras, tiny_bundle, tiny_data):
    from edgecnn.runtime import Predictor
    from edgecnn.verify import verify

    with pytest.raises(ModelFileError, match="Lambda"):
        Predictor.load(lambda_keras)
    with pytest.raises(ModelFileError, match="Lambda"):
        verify([tiny_bundle / "model_fp32.onnx"], reference=lambda_keras, data=tiny_data, progress=False)


# --------------------------------------------- .keras configs that name code


def _crafted(tiny_bundle: Path, folder: Path, name: str, change) -> Path:
    """The bundle's model.keras with its config.json changed by ``change(config)``."""
    with zipfile.ZipFile(tiny_bundle / "model.keras") as src:
        config = json.loads(src.read("config.json"))
        change(config)
        path = folder / f"{name}.keras"
        with zipfile.ZipFile(path, "w") as out:
            for info in src.infolist():
                out.writestr(info.filename, json.dumps(config) if info.filename == "config.json" else src.read(info))
    return path


def _first_conv(config: dict) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Conv2D")["config"]


CRAFTED = {
    # a function from outside Keras as the activation (CVE-2025-1550 style)
    "os-system-activation": lambda cfg, marker: _first_conv(cfg).update(
        activation={"module": "os", "class_name": "function", "config": "system", "registered_name": None}),
    # a class from outside Keras as an initializer, its config the arguments of a command
    "popen-initializer": lambda cfg, marker: _first_conv(cfg).update(
        kernel_initializer={"module": "subprocess", "class_name": "Popen", "config": {"args": ["touch", marker]},
                            "registered_name": None}),
    # the whole model replaced by a call
    "top-level-os-system": lambda cfg, marker: (cfg.clear(), cfg.update(
        module="os", class_name="system", config=f"touch {marker}", registered_name=None)),
    # a Lambda whose bytecode is embedded in the config
    "embedded-lambda": lambda cfg, marker: cfg["config"]["layers"].insert(1, {
        "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
        "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {
            "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA8wQAAAB8AFMAKQFOqQCpAdoBeHICAAAAcgIAAAD6AXjaCDxsYW1iZGE+", 
            "defaults": None, "closure": None}}}}),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_keras_configs_naming_code_are_refused_and_run_nothing(name, tiny_bundle, tmp_path):
    from edgecnn.model import load_model
    from edgecnn.runtime import Predictor

    marker = tmp_path / "code-ran"
    path = _crafted(tiny_bundle, tmp_path, name, lambda cfg: CRAFTED[name](cfg, str(marker)))
    for load in (load_model, Predictor.load):
        with pytest.raises(ModelFileError) as info:
            load(path)
        message = str(info.value)
        assert str(path) in message and "\n" not in message and len(message) < 600, message
    assert not marker.exists()


def _rezip(tiny_bundle: Path, folder: Path, name: str, change) -> Path:
    """The bundle's model.keras with its members changed by ``change(members)``."""
    with zipfile.ZipFile(tiny_bundle / "model.keras") as src:
        members = {n: src.read(n) for n in src.namelist()}
    change(members)
    path = folder / f"{name}.keras"
    with zipfile.ZipFile(path, "w") as out:
        for member, tiny_data in members.items():
            out.writestr(member, tiny_data)
    return path


BROKEN_KERAS = {
    "weights-truncated": (lambda m: m.update({"model.weights.h5": m["model.weights.h5"][:5000]}), "truncated"),
    "weights-random": (lambda m: m.update({"model.weights.h5": bytes(range(256)) * 64}), "signature"),
    "weights-missing": (lambda m: m.pop("model.weights.h5"), "model.weights.h5"),
    "config-not-json": (lambda m: m.update({"config.json": b"{not json"}), "property name"),
    "config-unknown-class": (lambda m: m.update({"config.json": json.dumps(
        {**json.loads(m["config.json"]), "class_name": "NoSuchModel"}).encode()}), "NoSuchModel"),
}


@pytest.mark.parametrize("name", list(BROKEN_KERAS))
def test_broken_keras_archives_are_one_line_errors(name, tiny_bundle, tmp_path):
    from edgecnn.model import load_model

    change, needle = BROKEN_KERAS[name]
    path = _rezip(tiny_bundle, tmp_path, name, change)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message and needle in message and "\n" not in message, message


# ---------------------------------------------------- ONNX and TFLite bytes


def _broken_variants(original: bytes, seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    variants = {"empty": b"", "random-1k": rng.bytes(1024), "random-64k": rng.bytes(65536),
                "header-only": original[:16], "zeros": bytes(len(original))}
    for fraction in (0.01, 0.1, 0.5, 0.9, 0.999):
        variants[f"truncated-{fraction}"] = original[: int(len(original) * fraction)]
    return variants


@pytest.mark.parametrize("file", [fmt.file for fmt in FORMATS.values()])
def test_broken_onnx_and_tflite_files_are_refused(file, tiny_bundle, tmp_path):
    """Random bytes, zeros, headers and truncations at 1%..99.9%: a ModelFileError naming the file, never a crash."""
    from edgecnn.runtime import Predictor

    original = (tiny_bundle / file).read_bytes()
    for name, raw in _broken_variants(original, seed=len(file)).items():
        path = tmp_path / f"{name}{Path(file).suffix}"
        path.write_bytes(raw)
        with pytest.raises(ModelFileError) as info:
            Predictor.load(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value), (name, info.value)


def test_predict_and_verify_refuse_random_bytes_cleanly(tiny_bundle, tiny_data, image, tmp_path):
    rng = np.random.default_rng(1)
    for suffix in sorted({Path(fmt.file).suffix for fmt in FORMATS.values()}):  # every export's file type
        path = tmp_path / f"random{suffix}"
        path.write_bytes(rng.bytes(4096))
        assert_one_line_error(invoke("predict", image, "--model", path), str(path), "corrupt", code=2)
    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, folder)
    (folder / "model_int8.onnx").write_bytes(rng.bytes(4096))
    _rehash_export(folder, "model_int8.onnx")  # not caught as tampering: it must fail to load, cleanly
    proc = run_cli("verify", folder / "model_int8.onnx", "--data-dir", tiny_data, env=_no_tf(tmp_path))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert any("cannot run model_int8.onnx" in line for line in proc.stdout.splitlines()), proc.stdout


def _rehash_export(folder: Path, file: str) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["exports"].values():
        if entry["file"] == file:
            entry["sha256"] = sha256_file(folder / file)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _no_tf(tmp_path: Path) -> dict:
    """verify and report on a device: TensorFlow absent, so the saved reference_probs.npy is read."""
    return without(tmp_path, TENSORFLOW)


# ------------------------------------------------------------------ pickles


class _Payload:
    """Unpickling this runs ``touch MARKER``: proof that a loader unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def _pickled_array(marker: Path) -> np.ndarray:
    return np.array([_Payload(marker)] * 10, dtype=object)


def test_pickled_reference_probs_are_refused(tiny_bundle, tiny_data, tmp_path):
    """verify without TensorFlow uses reference_probs.npy: a pickle there is refused, not run."""
    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, folder)
    marker = tmp_path / "code-ran"
    np.save(folder / "reference_probs.npy", _pickled_array(marker), allow_pickle=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["reference"]["probs_sha256"] = sha256_file(folder / "reference_probs.npy")  # not caught as altered
    (folder / "manifest.json").write_text(json.dumps(manifest))

    proc = run_cli("verify", folder / "model_fp32.onnx", "--data-dir", tiny_data, env=_no_tf(tmp_path))
    assert_one_line_error(proc, str(folder / "reference_probs.npy"), "allow_pickle=False", code=2)
    report = run_cli("report", folder, "--data-dir", tiny_data, env=_no_tf(tmp_path))
    assert report.returncode == 0 and "Traceback" not in report.stderr, report.stderr
    assert not marker.exists()


def test_pickled_reference_labels_are_refused(tiny_bundle, tiny_data, tmp_path):
    folder = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, folder)
    marker = tmp_path / "code-ran"
    np.save(folder / "reference_labels.npy", _pickled_array(marker), allow_pickle=True)
    proc = run_cli("verify", folder / "model_fp32.onnx", "--data-dir", tiny_data, env=_no_tf(tmp_path))
    assert_one_line_error(proc, str(folder / "reference_labels.npy"), code=2)
    assert not marker.exists()


def test_pickled_calibration_data_is_refused(tiny_bundle, tmp_path):
    from edgecnn.export import export_model

    marker = tmp_path / "code-ran"
    evil = tmp_path / "calibration.npz"
    np.savez(evil, x=_pickled_array(marker), allow_pickle=True)
    with pytest.raises(EdgecnnError, match="allow_pickle=False") as info:
        export_model(tiny_bundle / "model.keras", ("tflite-int8",), tmp_path / "out", data=evil)
    assert str(evil) in str(info.value)
    assert not marker.exists() and not (tmp_path / "out" / "model_int8.tflite").exists()


# ---------------------------------------------------------- the code itself

PICKLE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal", "torch"}


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` of a call's function, as far as it is made of plain names."""
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "?"


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, _dotted(node.func)


def _keyword(node: ast.Call, name: str):
    return next((kw.value for kw in node.keywords if kw.arg == name), None)


def test_no_loading_path_can_unpickle():
    """Static check of the package: numpy loads pass allow_pickle=False, Keras loads keep safe mode,
    nothing imports a pickle-family module, and nothing evals text."""
    problems = []
    for source in sorted((REPO / "edgecnn").rglob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        where = source.relative_to(REPO)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                for name in names:
                    if name and name.split(".")[0] in PICKLE_MODULES:
                        problems.append(f"{where}:{node.lineno} imports {name}")
        for node, name in _calls(tree):
            if name in ("np.load", "numpy.load"):
                flag = _keyword(node, "allow_pickle")
                if not (isinstance(flag, ast.Constant) and flag.value is False):
                    problems.append(f"{where}:{node.lineno} {name} without allow_pickle=False")
            if name.endswith(("saving.load_model", "models.load_model")) and where.as_posix() != "edgecnn/model.py":
                problems.append(f"{where}:{node.lineno} calls {name} instead of edgecnn.model.load_model")
            if name in ("eval", "exec", "yaml.load", "pickle.load", "pickle.loads", "torch.load"):
                problems.append(f"{where}:{node.lineno} calls {name}()")
            flag = _keyword(node, "safe_mode")
            if flag is not None and not (isinstance(flag, ast.UnaryOp) or (isinstance(flag, ast.Constant) and flag.value)):
                problems.append(f"{where}:{node.lineno} passes safe_mode={ast.unparse(flag)}")
    model_py = (REPO / "edgecnn" / "model.py").read_text()
    assert "safe_mode=not unsafe" in model_py, "edgecnn.model.load_model must keep safe mode on by default"
    assert problems == [], "\n".join(problems)
