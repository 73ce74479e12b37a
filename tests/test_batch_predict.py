"""`edgecnn predict DIR --out FILE`: a folder tree of any size scored into a file, resumably, locally or on Ray.

The rows must be those of the Predictor on the same images, whatever the
workers, the runner or the interruptions: each test compares against the plain
Predictor or against an uninterrupted run, byte for byte.
"""
from __future__ import annotations

import csv
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.batch import WRITERS, errors_file, score_folder
from edgecnn.batch.job import state_folder
from edgecnn.batch.listing import walk_images
from edgecnn.runtime import Predictor

from .conftest import blob_images
from .helpers import ENV_AT_START, REPO, assert_one_line_error, invoke


def image_tree(root: Path, n: int, *, rgb: bool = False, size: int = 28, broken: int = 1, seed: int = 1) -> Path:
    """``n`` PNGs in nested folders (and ``broken`` files that are not images, and a hidden one)."""
    x = blob_images(n, seed)
    if size != 28:
        x = np.asarray([np.asarray(Image.fromarray(image).resize((size, size))) for image in x])
    for i, image in enumerate(x):
        folder = root / f"shelf{i % 3}" / f"box{i % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.stack([image, 255 - image, image // 2], axis=-1) if rgb else image
        Image.fromarray(pixels).save(folder / f"{i:06d}.png")
    for i in range(broken):
        (root / f"shelf{i % 3}" / f"broken{i}.png").write_bytes(b"not a png")
    (root / ".hidden.png").write_bytes(b"skipped")
    return root


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return image_tree(tmp_path_factory.mktemp("tree"), 300, broken=2)


def test_the_listing_is_recursive_sorted_and_skips_hidden_names(tree):
    paths = list(walk_images(tree))
    assert len(paths) == 302 and not any(p.startswith(".") for p in paths)
    assert set(paths) == {p.relative_to(tree).as_posix() for p in tree.rglob("*.png") if p.name != ".hidden.png"}
    # one fixed order: a folder's files (sorted), then its sub-folders (sorted), depth first
    assert paths[:2] == ["shelf0/broken0.png", "shelf0/box0/000000.png"] and paths == list(walk_images(tree))


@pytest.mark.parametrize("model", ["model_int8.tflite", "model_int8.onnx"])
def test_rows_are_the_predictors_own_and_bad_images_go_to_the_errors_file(tiny_bundle, tree, tmp_path, model):
    out = tmp_path / "predictions.csv"
    report = score_folder(tree, out, model=tiny_bundle / model, top_k=2, workers=1, chunk=64)
    assert (report.images, report.predicted, report.failed) == (302, 300, 2)
    rows = read_csv(out)
    assert [r["path"] for r in rows] == [p for p in walk_images(tree) if "broken" not in p]
    predictor = Predictor.load(tiny_bundle / model)
    expected = predictor.predict(np.stack([predictor.image_input(tree / r["path"]) for r in rows]))
    ranked = predictor.rank(expected, 2)
    for row, top in zip(rows, ranked):
        assert [row["label_1"], row["label_2"]] == [label for label, _ in top]
        assert [float(row["probability_1"]), float(row["probability_2"])] == [p for _, p in top]  # exact
    assert {r["model_sha256"] for r in rows} == {report.model_sha256}
    errors = errors_file(out).read_text().splitlines()
    assert errors[0] == "path\treason" and len(errors) == 3
    assert errors[1].startswith("shelf0/broken0.png\t") and "not an image" in errors[1]
    assert not state_folder(out).exists()  # the run's state is gone once the output is written


def test_two_workers_write_the_same_bytes_as_one(tiny_bundle, tree, tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    score_folder(tree, one, model=tiny_bundle / "model_int8.tflite", workers=1, chunk=50)
    report = score_folder(tree, two, model=tiny_bundle / "model_int8.tflite", workers=2, chunk=50)
    assert report.workers == 2 and one.read_bytes() == two.read_bytes()
    first = json.loads(one.read_text().splitlines()[0])
    assert set(first) == {"path", "top_k", "model_sha256"} and len(first["top_k"]) == 1


def test_parquet_holds_the_same_rows_as_csv(tiny_bundle, tree, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    score_folder(tree, tmp_path / "p.csv", model=tiny_bundle / "model_int8.onnx", top_k=3, workers=1)
    score_folder(tree, tmp_path / "p.parquet", model=tiny_bundle / "model_int8.onnx", top_k=3, workers=1, chunk=100)
    table = pq.read_table(tmp_path / "p.parquet").to_pylist()
    rows = read_csv(tmp_path / "p.csv")
    assert len(table) == len(rows) == 300
    for got, want in zip(table, rows):
        assert got["path"] == want["path"] and got["label_3"] == want["label_3"]
        assert got["probability_1"] == float(want["probability_1"])
    assert set(WRITERS) == {".csv", ".jsonl", ".parquet"}


def test_a_run_cut_after_some_chunks_continues_without_losing_or_repeating_any(tiny_bundle, tree, tmp_path,
                                                                                 monkeypatch):
    """The in-process view of a kill: the run stops after 2 of 7 chunks; run again, it scores the other 5."""
    import edgecnn.batch.job as job_module

    whole = tmp_path / "whole.csv"
    score_folder(tree, whole, model=tiny_bundle / "model_int8.tflite", workers=1, chunk=50)
    cut, saved = tmp_path / "cut.csv", job_module.Job.save

    def save_two(self, result):
        if len(list((self.state / job_module.PARTS).iterdir())) == 2:
            raise KeyboardInterrupt  # the kill
        saved(self, result)

    monkeypatch.setattr(job_module.Job, "save", save_two)
    with pytest.raises(KeyboardInterrupt):
        score_folder(tree, cut, model=tiny_bundle / "model_int8.tflite", workers=1, chunk=50)
    assert not cut.exists() and len(list((state_folder(cut) / "parts").iterdir())) == 2
    monkeypatch.setattr(job_module.Job, "save", saved)
    scored = []
    report = score_folder(tree, cut, model=tiny_bundle / "model_int8.tflite", workers=1, chunk=50,
                          on_progress=lambda done, total: scored.append((done, total)))
    assert report.done_before == 100 and scored[-1] == (202, 202)
    assert cut.read_bytes() == whole.read_bytes()
    assert errors_file(cut).read_bytes() == errors_file(whole).read_bytes()


def test_the_predictor_pickles_by_reference(tiny_bundle):
    predictor = Predictor.load(tiny_bundle / "model_int8.onnx", threads=1)
    data = pickle.dumps(predictor)
    assert len(data) < 1000 and b"model_int8.onnx" in data  # its path, not its session
    again = pickle.loads(data)
    x = blob_images(4)
    assert np.array_equal(again.predict(x), predictor.predict(x)) and again.classes == predictor.classes
    with pytest.raises(TypeError, match="Predictor.load"):
        pickle.dumps(Predictor(predictor.runtime, classes=predictor.classes,
                               preprocessing=predictor.preprocessing, precision="int8"))


# ----------------------------------------------------------------------------- the command and its refusals


def test_the_command_prints_a_summary_and_exits_1_for_unreadable_images(tiny_bundle, tree, tmp_path):
    out = tmp_path / "rows.csv"
    proc = invoke("predict", tree, "--out", out, "--model", tiny_bundle / "model_int8.tflite", "--workers", "1")
    assert proc.returncode == 1, proc.stderr
    assert "300 of 302 images predicted, 2 unreadable" in proc.stdout and "images/s" in proc.stdout
    assert f"-> {out}" in proc.stdout and len(read_csv(out)) == 300


@pytest.mark.parametrize("args, needles", [
    (["--out", "{tmp}/rows.txt"], ["rows.txt", "unknown output type '.txt'", ".csv, .jsonl, .parquet"]),
    (["--out", "{tmp}/rows.csv", "--json"], ["--json cannot be used with --out"]),
    (["--workers", "2"], ["--workers needs --out"]),
    (["--ray"], ["--ray needs --out"]),
    (["--out", "{tmp}/rows.csv", "--top-k", "11"], ["--top-k 11", "only 10 classes"]),
])
def test_bad_requests_are_one_line(tiny_bundle, tree, tmp_path, args, needles):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = invoke("predict", tree, "--model", tiny_bundle / "model_int8.tflite", *args)
    assert_one_line_error(proc, *needles, code=2)
    assert not list(tmp_path.iterdir())


def test_a_file_or_two_folders_are_refused_with_out(tiny_bundle, tree, tmp_path):
    model = tiny_bundle / "model_int8.tflite"
    one = next(tree.rglob("*.png"))
    assert_one_line_error(invoke("predict", one, "--out", tmp_path / "r.csv", "--model", model),
                          str(one), "not a folder", code=2)
    assert_one_line_error(invoke("predict", tree, tree, "--out", tmp_path / "r.csv", "--model", model),
                          "one folder, got 2", code=2)


def test_an_unfinished_run_is_continued_only_as_it_was(tiny_bundle, tree, tmp_path):
    out = tmp_path / "rows.csv"
    state = state_folder(out)
    score_folder(tree, tmp_path / "done.csv", model=tiny_bundle / "model_int8.tflite", workers=1)
    proc = invoke("predict", tree, "--out", tmp_path / "done.csv", "--model", tiny_bundle / "model_int8.tflite")
    assert_one_line_error(proc, "done.csv exists", code=2)  # a finished run is never silently redone
    state.mkdir()
    (state / "job.json").write_text(json.dumps({"spec": {"folder": str(tree.resolve()), "model_sha256": "0" * 64},
                                                "count": 1, "offsets": [0]}))
    proc = invoke("predict", tree, "--out", out, "--model", tiny_bundle / "model_int8.tflite")
    assert_one_line_error(proc, "rows.csv has an unfinished run with another model", str(state), code=2)


def test_parquet_and_ray_without_their_extras_name_them(tiny_bundle, tree, tmp_path, monkeypatch):
    import importlib

    original = importlib.import_module

    def missing(name, *args):
        if name.split(".")[0] in ("pyarrow", "ray"):
            raise ImportError(f"No module named '{name}'")
        return original(name, *args)

    monkeypatch.setattr(importlib, "import_module", missing)
    model = tiny_bundle / "model_int8.tflite"
    assert_one_line_error(invoke("predict", tree, "--out", tmp_path / "r.parquet", "--model", model),
                          "--out *.parquet needs pyarrow", "pip install 'edgecnn[parquet]'", code=2)
    assert_one_line_error(invoke("predict", tree, "--out", tmp_path / "r.csv", "--model", model, "--ray"),
                          "--ray needs ray", "pip install 'edgecnn[ray]'", code=2)
    assert not list(tmp_path.iterdir())  # refused before any listing or part


# ----------------------------------------------------------------------------- a real architecture


def test_a_real_architecture_with_its_own_preprocessing(tmp_path_factory, tmp_path):
    """The MobileNetV2 wrapper (Rescaling outside a nested MobileNetV2, 32x32 RGB): its int8 ONNX export scored
    from a folder equals its Predictor on the same images, over two workers."""
    from .conftest import built_once
    from .test_architectures import _exported

    bundle = built_once(tmp_path_factory, "arch-nested-wrapper", lambda root: _exported("nested-wrapper", root))
    model = bundle / "bundle" / "model_int8.onnx"
    tree = image_tree(tmp_path / "rgb", 120, rgb=True, size=40, broken=0)  # 40x40: the model's center-crop
    out = tmp_path / "rows.jsonl"
    report = score_folder(tree, out, model=model, top_k=4, workers=2, chunk=32)
    assert report.predicted == 120 and report.failed == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    predictor = Predictor.load(model)
    expected = predictor.predict(np.stack([predictor.image_input(tree / r["path"]) for r in rows]))
    got = np.array([[t["probability"] for t in r["top_k"]] for r in rows])
    assert np.array_equal(got, -np.sort(-expected, axis=1))
    assert {t["label"] for r in rows for t in r["top_k"]} <= set(predictor.classes)


# ----------------------------------------------------------------------------- kill -9 and Ray (e2e)


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory) -> Path:
    return image_tree(tmp_path_factory.mktemp("big"), 20_000, broken=3)


def _command(tree: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "edgecnn", "predict", str(tree), "--out", str(out), "--model", str(model),
            "--chunk-size", "500", *extra]


@pytest.mark.e2e
def test_sigkill_at_any_point_then_resume_gives_the_uninterrupted_rows(tiny_bundle, big_tree, tmp_path):
    """20,000 images, 2 workers: killed with SIGKILL mid-run (twice), resumed, the output equals a run left alone."""
    model = tiny_bundle / "model_int8.tflite"
    whole, cut = tmp_path / "whole.csv", tmp_path / "cut.csv"
    assert subprocess.run(_command(big_tree, whole, model, "--workers", "2"), cwd=REPO, env=ENV_AT_START,
                          capture_output=True, timeout=600).returncode == 1  # the 3 broken files
    parts = state_folder(cut) / "parts"
    for wanted in (3, 20):  # killed once early, once late
        proc = subprocess.Popen(_command(big_tree, cut, model, "--workers", "2"), cwd=REPO, env=ENV_AT_START,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 300
        while not (parts.is_dir() and len(list(parts.glob("*.json"))) >= wanted) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not cut.exists()
        assert len(list(parts.glob("*.json"))) < 41  # it really was cut short (41 chunks)
    resumed = subprocess.run(_command(big_tree, cut, model, "--workers", "2"), cwd=REPO, env=ENV_AT_START,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 1, resumed.stderr
    assert "continuing a run that had scored" in resumed.stdout
    assert cut.read_bytes() == whole.read_bytes()
    assert errors_file(cut).read_bytes() == errors_file(whole).read_bytes()
    assert len(read_csv(cut)) == 20_000 and not state_folder(cut).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgecnn-tmp")]  # no stray temp files


@pytest.mark.e2e
def test_on_a_local_ray_cluster_the_rows_are_the_local_runs(tiny_bundle, tree, tmp_path):
    pytest.importorskip("ray.data")
    model = tiny_bundle / "model_int8.onnx"
    local, on_ray = tmp_path / "local.csv", tmp_path / "ray.csv"
    score_folder(tree, local, model=model, top_k=3, workers=2, chunk=40)
    report = score_folder(tree, on_ray, model=model, top_k=3, workers=2, chunk=40, ray="")
    assert report.where.startswith("a local Ray cluster")
    assert on_ray.read_bytes() == local.read_bytes()
    assert errors_file(on_ray).read_bytes() == errors_file(local).read_bytes()
