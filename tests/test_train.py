"""The reference model, the training recipe, its artifacts and its bad-input handling."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from edgecnn.model import REFERENCE_LAYERS, REFERENCE_PARAMS, build_model, layer_table, load_model
from edgecnn.train import TrainConfig, train

from .conftest import REAL_DATA, needs_real_data, write_idx
from .helpers import assert_one_line_error, invoke, run_cli


def test_architecture_matches_the_reference_table():
    rows = layer_table(build_model())
    assert [(r.kind, r.output_shape, r.params) for r in rows] == list(REFERENCE_LAYERS)
    assert sum(r.params for r in rows) == REFERENCE_PARAMS


def _weights(path) -> list[np.ndarray]:
    return [np.asarray(w) for w in load_model(path).get_weights()]


@needs_real_data
def test_same_seed_same_weights_and_artifacts(tmp_path):
    first = train(TrainConfig(out=tmp_path / "a", limit=600, epochs=2, seed=7))
    second = train(TrainConfig(out=tmp_path / "b", limit=600, epochs=2, seed=7))
    other = train(TrainConfig(out=tmp_path / "c", limit=600, epochs=1, seed=8))
    a, b, c = (_weights(r.model_path) for r in (first, second, other))
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))
    assert any(x.tobytes() != y.tobytes() for x, y in zip(a, c))
    out = tmp_path / "a"
    for name in ("model.keras", "history.json", "metrics.json", "training.png", "summary.txt"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seed"] == 7 and metrics["epochs_run"] == 2 and metrics["train_images"] == 480
    assert {"test_accuracy", "test_loss", "val_accuracy", "wall_time_s", "machine"} <= metrics.keys()
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == len(history["val_loss"]) == 2
    with zipfile.ZipFile(out / "model.keras") as archive:  # no optimizer state in the shipped model
        assert archive.getinfo("model.weights.h5").file_size < 1.1 * 4 * REFERENCE_PARAMS


@needs_real_data
def test_cli_train_prints_one_result_line_and_hides_tf_noise(tmp_path):
    proc = run_cli("train", "--out", tmp_path / "m", "--limit", "300", "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    assert "test_accuracy" in proc.stdout.strip().splitlines()[-1]
    for noise in ("oneDNN", "cuda", "absl", "I0000"):
        assert noise not in proc.stderr, proc.stderr


@pytest.mark.parametrize("args, needles", [
    (["--epochs", "0"], ["--epochs", "at least 1"]),
    (["--batch-size", "-1"], ["--batch-size"]),
    (["--limit", "5"], ["--limit"]),
    (["--limit", "999999"], ["--limit 999999", "larger than"]),
])
def test_train_rejects_bad_options(tmp_path, idx_dir, args, needles):
    proc = invoke("train", "--out", tmp_path / "out", "--data-dir", idx_dir, *args)
    assert_one_line_error(proc, *needles, code=2)


def test_train_bad_data(tmp_path, idx_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(invoke("train", "--out", tmp_path / "o", "--data-dir", empty), str(empty), code=2)
    assert_one_line_error(invoke("train", "--out", tmp_path / "o", "--data-dir", tmp_path / "missing"),
                          "missing", code=2)
    images = idx_dir / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:100])
    assert_one_line_error(invoke("train", "--out", tmp_path / "o", "--data-dir", idx_dir), str(images), code=2)
    write_idx(images, np.zeros((200, 28, 28), np.uint8))
    labels = idx_dir / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(b"\x1f\x8b" + labels.read_bytes()[2:4] + b"junk")
    assert_one_line_error(invoke("train", "--out", tmp_path / "o", "--data-dir", idx_dir), str(labels), code=2)


def test_train_wrong_magic_number(tmp_path, idx_dir):
    import gzip

    labels = idx_dir / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[2] = 0x0D  # float instead of unsigned byte
    labels.write_bytes(gzip.compress(bytes(raw)))
    assert_one_line_error(invoke("train", "--out", tmp_path / "o", "--data-dir", idx_dir),
                          "wrong magic number", str(labels), code=2)


def test_train_unwritable_out(tmp_path, idx_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_one_line_error(invoke("train", "--out", blocker, "--data-dir", idx_dir), str(blocker), code=2)
    assert_one_line_error(invoke("train", "--out", blocker / "sub", "--data-dir", idx_dir), "cannot write", code=2)


def test_summary_prints_the_table_and_draws_it(tmp_path):
    proc = invoke("summary", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "333,526" in proc.stdout and "MaxPooling2D" in proc.stdout
    assert (tmp_path / "architecture.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_without_graphviz_skips_only_the_picture(tmp_path):
    proc = invoke("summary", "--out", tmp_path, env={"PATH": "/nonexistent"})
    assert proc.returncode == 0, proc.stderr
    assert "333,526" in proc.stdout
    assert "Graphviz" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "architecture.png").exists()


@pytest.mark.e2e
@needs_real_data
def test_default_training_reaches_reference_accuracy(tmp_path):
    """The textbook recipe on the real data: test accuracy >= 0.905 (reference 0.9073)."""
    result = train(TrainConfig(out=tmp_path / "full", data=REAL_DATA))
    assert result.metrics["test_accuracy"] >= 0.905, result.metrics
    assert result.metrics["epochs_run"] <= 20
