"""Determinism beyond tests/test_train.py (which compares weight arrays of two in-process runs).

Here: a fresh ``edgecnn train`` process and an in-process run with the same seed
write byte-identical weight files (model.weights.h5 inside model.keras), config
and history; and exporting the same model twice gives identical predictions in
every format (TFLite files are even byte-identical).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from edgecnn.datasets import load_dataset

from .conftest import run_cli


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_same_seed_in_another_process_writes_identical_weight_bytes(tmp_path, tiny_data):
    from edgecnn.train import TrainConfig, train

    train(TrainConfig(out=tmp_path / "here", epochs=2, seed=11, data=tiny_data, limit=400))
    proc = run_cli("train", "--out", tmp_path / "there", "--epochs", "2", "--seed", "11", "--data-dir", tiny_data,
                   "--limit", "400")
    assert proc.returncode == 0, proc.stderr
    here, there = _members(tmp_path / "here" / "model.keras"), _members(tmp_path / "there" / "model.keras")
    assert here.keys() == there.keys() and "model.weights.h5" in here
    assert here["model.weights.h5"] == there["model.weights.h5"], "weights file differs between processes"
    assert here["config.json"] == there["config.json"]
    meta_here, meta_there = (json.loads(m["metadata.json"]) for m in (here, there))
    meta_here.pop("date_saved"), meta_there.pop("date_saved")
    assert meta_here == meta_there
    assert (tmp_path / "here" / "history.json").read_bytes() == (tmp_path / "there" / "history.json").read_bytes()
    metrics = [json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("here", "there")]
    for key in ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "best_epoch", "epochs_run"):
        assert metrics[0][key] == metrics[1][key], key


def test_exporting_the_same_model_twice_gives_the_same_predictions(tiny_bundle, tiny_data, tmp_path):
    """The shared bundle was exported once; export its model again and compare every format."""
    from edgecnn.export import FORMATS, export_model
    from edgecnn.fileio import sha256_file
    from edgecnn.runtime import Predictor

    again = tmp_path / "again"
    export_model(tiny_bundle / "model.keras", ("all",), again, calibration_samples=100, data=tiny_data)
    x = load_dataset(tiny_data).x_test
    assert np.array_equal(np.load(tiny_bundle / "reference_probs.npy"), np.load(again / "reference_probs.npy"))
    for name, fmt in FORMATS.items():
        first, second = Predictor.load(tiny_bundle / fmt.file), Predictor.load(again / fmt.file)
        assert np.array_equal(first.predict(x), second.predict(x)), f"{name}: predictions differ between exports"
        if fmt.runtime == "litert":  # the TFLite converter is fully reproducible
            assert sha256_file(tiny_bundle / fmt.file) == sha256_file(again / fmt.file), name
