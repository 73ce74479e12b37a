"""The bundle's JSON files carry a schema version and are checked field by field when read."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgecnn.bundle import load_manifest
from edgecnn.bundle.results import load_bundle
from edgecnn.bundle.schema import (BENCH_WHAT, SCHEMA_VERSIONS, VERIFY_WHAT, BenchFile, SchemaError, VerifyFile,
                                   read_checked)

from .conftest import REPO, assert_one_line_error, run_cli

REFERENCE = REPO / "models" / "fashion-cnn"
FILES = {"manifest.json": None, "verify.json": (VerifyFile, VERIFY_WHAT), "bench.json": (BenchFile, BENCH_WHAT)}


def _read(folder: Path, name: str):
    kind = FILES[name]
    return load_manifest(folder) if kind is None else read_checked(kind[0], folder / name, kind[1])


@pytest.mark.parametrize("name", FILES)
def test_the_committed_bundle_files_carry_their_schema_and_read_back(name):
    assert json.loads((REFERENCE / name).read_text())["schema"] == 1
    assert _read(REFERENCE, name).schema == 1


def _damaged(tmp_path: Path, name: str, change) -> Path:
    folder = tmp_path / "bundle"
    folder.mkdir(exist_ok=True)
    data = json.loads((REFERENCE / name).read_text())
    change(data)
    (folder / name).write_text(json.dumps(data))
    return folder


DAMAGE = [
    ("manifest.json", lambda d: d["exports"]["tflite"].pop("sha256"), "field exports.tflite.sha256 is missing"),
    ("manifest.json", lambda d: d["exports"]["onnx"].update(bytes="big"),
     "field exports.onnx.bytes must be a whole number, got a string"),
    ("manifest.json", lambda d: d["exports"]["onnx"].update(file="../elsewhere.onnx"), "must be a file name inside"),
    ("manifest.json", lambda d: d.update(class_names="T-shirt"), "field class_names must be a list, got a string"),
    ("manifest.json", lambda d: d["model"].update(input_shape=[28, "28", 1]),
     "field model.input_shape[1] must be a whole number"),
    ("verify.json", lambda d: d["exports"]["tflite-int8"].update(passed="yes"),
     "field exports.tflite-int8.passed must be true or false, got a string"),
    ("verify.json", lambda d: d["reference"].pop("accuracy"), "field reference.accuracy is missing"),
    ("verify.json", lambda d: d["exports"]["onnx"]["disagreements"].append({"index": "7"}),
     "field exports.onnx.disagreements[0].index must be a whole number"),
    ("bench.json", lambda d: d["results"][3]["latency_s"].pop("p50"), "field results[3].latency_s.p50 is missing"),
    ("bench.json", lambda d: d.update(results={}), "field results must be a list, got an object"),
    ("manifest.json", lambda d: d.pop("schema"), "has no 'schema' field"),
    ("verify.json", lambda d: d.update(schema=2), "has schema 2; this edgecnn reads schema 1"),
]


@pytest.mark.parametrize("name, change, message", DAMAGE)
def test_a_damaged_file_is_one_error_naming_the_file_and_the_field(tmp_path, name, change, message):
    folder = _damaged(tmp_path, name, change)
    with pytest.raises(SchemaError) as caught:
        _read(folder, name)
    text = str(caught.value)
    assert str(folder / name) in text and message in text and "\n" not in text, text


def test_every_file_the_schema_knows_is_versioned():
    assert set(SCHEMA_VERSIONS) == {"manifest", VERIFY_WHAT, BENCH_WHAT}


def test_a_damaged_result_file_becomes_a_note_in_the_report_not_a_crash(tmp_path):
    """The report reads verify.json through its schema: a bad field is a named problem, the page is still made."""
    folder = tmp_path / "bundle"
    shutil.copytree(REFERENCE, folder)
    data = json.loads((folder / "verify.json").read_text())
    data["exports"]["onnx"]["agreement"] = "all"
    (folder / "verify.json").write_text(json.dumps(data))
    bundle = load_bundle(folder)
    assert bundle.verify is None
    assert "field exports.onnx.agreement must be a number" in bundle.problems["verify.json"]


def test_verify_refuses_a_manifest_of_another_schema_in_one_line(tmp_path):
    folder = _damaged(tmp_path, "manifest.json", lambda d: d.update(schema=99))
    proc = run_cli("verify", folder)
    assert_one_line_error(proc, "manifest.json has schema 99", code=2)
