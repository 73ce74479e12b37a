"""Bugs are not hidden: an unexpected exception reaches the user as a bug (exit 3), a bad file stays a one-line error.

The rule (edgecnn.errors, the CLI): a problem the user can fix is an
:class:`EdgecnnError` (one line, exit 2, or a FAIL row and exit 1); anything
else is a bug in edgecnn or a runtime, and propagates: ``error: unexpected
TypeError: ...`` and exit 3 through the CLI, its traceback with ``--debug``.
Each test here fails if a ``except Exception`` came back where it hid one.
On the session's tiny bundle (synthetic data): seconds.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgecnn.bench.facts import file_facts
from edgecnn.bench.run import run_worker
from edgecnn.bench.worker import PAIR_MODE
from edgecnn.bundle.manifest import update_manifest
from edgecnn.errors import EdgecnnError, ModelFileError
from edgecnn.export import FORMATS
from edgecnn.fileio import sha256_file
from edgecnn.render import report
from edgecnn.runtime import Predictor
from edgecnn.verify import GATES, verify

from .helpers import assert_one_line_error, invoke


@pytest.fixture
def bundle(tiny_bundle, tmp_path) -> Path:
    """A copy of the session's tiny bundle, free to change."""
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


def _rows(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines() if line.split()[:1] and line.split()[0] in FORMATS}


def _rehash(bundle: Path, key: str) -> None:
    """Record the current bytes of export ``key`` in the manifest: the file is not taken for a tampered one."""
    update_manifest(bundle, lambda m: m["exports"][key].update(sha256=sha256_file(bundle / m["exports"][key]["file"])))


# ----------------------------------------------------------------------------- verify


@pytest.fixture
def onnx_predict_bug(monkeypatch) -> str:
    """ONNX Runtime predictions raise a TypeError (a bug, not a bad file) once the model has loaded."""
    message = "unsupported operand type(s) for +: 'NoneType' and 'int'"
    predict = Predictor.predict

    def broken(self, x):
        if self.backend == "onnxruntime":
            raise TypeError(message)
        return predict(self, x)

    monkeypatch.setattr(Predictor, "predict", broken)
    return message


def test_verify_lets_an_unexpected_exception_propagate(bundle, tiny_data, onnx_predict_bug):
    target = bundle / FORMATS["onnx"].file
    with pytest.raises(TypeError, match="unsupported operand"):
        verify([target], data=tiny_data, progress=False)

    proc = invoke("verify", target, "--data-dir", tiny_data)
    line = assert_one_line_error(proc, "unexpected TypeError", onnx_predict_bug, "--debug", code=3)
    assert line.startswith("error: unexpected TypeError: ")
    assert "FAIL" not in proc.stdout and "cannot run" not in proc.stdout  # not taken for a broken model file
    assert not (bundle / "verify.json").exists()  # nothing stored from a run that crashed

    debug = invoke("--debug", "verify", target, "--data-dir", tiny_data)
    assert debug.returncode == 3
    assert "Traceback (most recent call last)" in debug.stderr and f"TypeError: {onnx_predict_bug}" in debug.stderr
    assert "in broken" in debug.stderr  # the traceback reaches the raising frame


def test_verify_fails_a_model_file_that_cannot_run_and_runs_the_others(bundle, tiny_data):
    broken = bundle / FORMATS["onnx-int8"].file
    broken.write_bytes(b"\x08\x07garbage, not a protobuf" * 40)
    _rehash(bundle, "onnx-int8")  # its sha256 recorded: not tampered, just not a model
    proc = invoke("verify", broken, bundle / FORMATS["tflite"].file, "--data-dir", tiny_data)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and not [e for e in proc.stderr.splitlines() if e.startswith("error:")]
    rows = _rows(proc.stdout)
    assert rows["onnx-int8"].endswith("FAIL") and rows["tflite"].endswith("PASS"), proc.stdout
    assert f"  onnx-int8: cannot run {broken.name}" in proc.stdout


def test_a_file_gets_the_manifest_entry_of_its_bytes_not_of_its_name(bundle, tiny_data):
    fp32 = bundle / FORMATS["onnx"].file
    renamed = bundle / "copy of the float model.onnx"  # a name the manifest does not list
    shutil.copyfile(fp32, renamed)
    (row,) = verify([renamed], data=tiny_data, progress=False).rows
    assert (row.key, row.precision, row.thresholds) == ("onnx", "float32", GATES["float32"]) and row.passed

    int8_name = bundle / FORMATS["onnx-int8"].file  # the float model under the int8 file's name:
    shutil.copyfile(fp32, int8_name)  # it is the onnx entry's file, gated as float32, not int8's looser gate
    (row,) = verify([int8_name], data=tiny_data, progress=False).rows
    assert (row.key, row.precision, row.thresholds) == ("onnx", "float32", GATES["float32"]) and row.passed
    assert row.thresholds != GATES["int8"]


def test_a_listed_file_whose_bytes_changed_fails_as_tampered(bundle, tiny_data):
    listed = bundle / FORMATS["onnx-int8"].file
    listed.write_bytes(listed.read_bytes() + b"\0")  # no entry holds these bytes; the name is onnx-int8's
    (row,) = verify([listed], data=tiny_data, progress=False).rows
    assert row.key == "onnx-int8" and not row.passed
    assert row.failures[0].startswith(f"tampered: sha256 of {listed.name}"), row.failures
    proc = invoke("verify", listed, "--data-dir", tiny_data)
    assert proc.returncode == 1 and _rows(proc.stdout)["onnx-int8"].endswith("FAIL"), proc.stdout + proc.stderr
    assert f"  onnx-int8: tampered: sha256 of {listed.name}" in proc.stdout


# ----------------------------------------------------------------------------- report


def _one_file_bundle(folder: Path) -> Path:
    folder.mkdir()
    (folder / "summary.txt").write_text("layer table\n")
    return folder


def _section_raising(monkeypatch, anchor: str, exc: BaseException) -> None:
    def boom(bundle, data):
        raise exc

    sections = tuple((a, title, boom if a == anchor else build) for a, title, build in report.SECTIONS)
    assert any(a == anchor for a, _, _ in sections)
    monkeypatch.setattr(report, "SECTIONS", sections)


def test_a_bug_in_a_report_section_propagates(tmp_path, idx_dir, monkeypatch):
    folder = _one_file_bundle(tmp_path / "b")
    _section_raising(monkeypatch, "training", KeyError("val_accuracy"))
    with pytest.raises(KeyError, match="val_accuracy"):
        report.write_report(folder, data=idx_dir)
    proc = invoke("report", folder, "--data-dir", idx_dir)
    assert_one_line_error(proc, "unexpected KeyError", "val_accuracy", code=3)
    assert not (folder / "report.html").exists()  # no page that hides the bug as a degraded section


def test_a_section_the_files_cannot_give_is_a_note_in_the_page(tmp_path, idx_dir, monkeypatch):
    folder = _one_file_bundle(tmp_path / "b")
    _section_raising(monkeypatch, "training", EdgecnnError("history.json has 3 epochs, metrics.json says 5"))
    proc = invoke("report", folder, "--data-dir", idx_dir)
    assert proc.returncode == 0, proc.stderr
    page = (folder / "report.html").read_text("utf-8")
    assert "this section could not be drawn from the files" in page
    assert "history.json has 3 epochs, metrics.json says 5" in page
    assert page.count("<section id=") == len(report.SECTIONS)  # the other sections are drawn


# ----------------------------------------------------------------------------- bench


@pytest.mark.parametrize("name", list(FORMATS))
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_bench_facts_of_a_corrupt_file_are_a_model_file_error(tiny_bundle, tmp_path, name, damage):
    original = (tiny_bundle / FORMATS[name].file).read_bytes()
    path = tmp_path / FORMATS[name].file
    path.write_bytes(b"\x08\x07not a model" * 50 if damage == "garbage" else original[: len(original) // 2])
    with pytest.raises(ModelFileError) as caught:
        file_facts(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def _case(tmp_path: Path, **case) -> dict:
    """A worker group whose input images are missing: the worker crashes with a FileNotFoundError (a bug)."""
    return {"cases": [{"mode": "predictor", "batch_size": 1}], "batch_size": 1, "threads": 1, "runs": 2, "warmup": 0,
            "max_seconds": None, "min_runs": 1, "images": str(tmp_path / "vanished.npy"), **case}


def test_a_crashed_bench_worker_is_a_runtime_error_naming_the_model(tiny_bundle, tmp_path):
    model = tiny_bundle / FORMATS["tflite"].file
    with pytest.raises(RuntimeError) as caught:
        run_worker(_case(tmp_path, path=str(model)), tmp_path)
    message = str(caught.value)
    assert not isinstance(caught.value, EdgecnnError)
    assert f"benchmark worker for {model} (predictor) crashed" in message and "FileNotFoundError" in message


def test_a_crashed_pair_worker_names_both_models(tiny_bundle, tmp_path):
    int8, fp32 = tiny_bundle / FORMATS["tflite-int8"].file, tiny_bundle / FORMATS["tflite"].file
    with pytest.raises(RuntimeError) as caught:  # it was KeyError: 'path' (a pair case carries "paths")
        run_worker(_case(tmp_path, paths=[str(int8), str(fp32)], mode=PAIR_MODE), tmp_path)
    message = str(caught.value)
    assert f"benchmark worker for {int8}, {fp32} ({PAIR_MODE}) crashed" in message and "FileNotFoundError" in message


def test_a_crashed_bench_worker_exits_3_through_the_cli(tiny_bundle, tmp_path, monkeypatch):
    import edgecnn.bench.run as bench_run

    save_inputs = bench_run._save_inputs

    def vanishing(*args):  # the workers' input images disappear: each worker crashes on loading them
        inputs = save_inputs(*args)
        for path, _ in inputs.values():
            path.unlink()
        return inputs

    monkeypatch.setattr(bench_run, "_save_inputs", vanishing)
    model = Path(shutil.copy(tiny_bundle / FORMATS["onnx"].file, tmp_path / "model.onnx"))
    proc = invoke("bench", model, "--runs", "2", "--warmup", "0", "--batch-sizes", "1", "--threads", "1")
    assert_one_line_error(proc, "unexpected RuntimeError", f"benchmark worker for {model.resolve()}", "crashed",
                          code=3)
    assert not (tmp_path / "bench.json").exists()


def test_an_expected_worker_error_stays_one_line(tmp_path):
    """The other side of the rule: an EdgecnnError inside the worker is reported, not a crash."""
    import numpy as np

    images = tmp_path / "images.npy"
    np.save(images, np.zeros((1, 28, 28, 1), np.uint8))
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(EdgecnnError) as caught:
        run_worker(_case(tmp_path, path=str(bad), images=str(images)), tmp_path)
    assert str(bad) in str(caught.value) and "crashed" not in str(caught.value)
    assert json.loads(next(tmp_path.glob("result-*.json")).read_text())["error"] == str(caught.value)
