"""The IDX reader, the dataset search path and preprocessing."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from edgecnn.datasets import fashion_mnist as data
from edgecnn.datasets import train_val_split
from edgecnn.preprocess import to_model_input
from edgecnn.errors import DataError

from .conftest import REAL_DATA, make_idx_dataset, needs_real_data, write_idx


def test_read_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(data.read_idx(write_idx(tmp_path / "a.gz", array)), array)
    assert np.array_equal(data.read_idx(write_idx(tmp_path / "a.idx", array, compress=False)), array)


@pytest.mark.parametrize("corrupt, message", [
    (lambda raw: gzip.compress(raw)[:-12], "truncated or corrupt gzip"),
    (lambda raw: gzip.compress(b"\x00\x00\x0d\x03" + raw[4:]), "wrong magic number"),
    (lambda raw: gzip.compress(raw[:-5]), "declares"),
    (lambda raw: gzip.compress(raw + b"xx"), "declares"),
    (lambda raw: gzip.compress(raw[:6]), "truncated inside its header"),
    (lambda raw: b"", "too short"),
])
def test_read_idx_rejects_bad_files_naming_them(tmp_path, corrupt, message):
    array = np.zeros((3, 4, 4), dtype=np.uint8)
    raw = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()
    path = tmp_path / "broken-ubyte.gz"
    path.write_bytes(corrupt(raw))
    with pytest.raises(DataError, match=message) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_load_from_explicit_dir(idx_dir):
    dataset = data.load_dataset(idx_dir, allow_download=False)
    assert dataset.x_train.shape == (200, 28, 28) and dataset.x_train.dtype == np.uint8
    assert dataset.y_test.shape == (50,) and dataset.source == str(idx_dir)


def test_env_var_is_searched(idx_dir, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(idx_dir))
    assert data.load_dataset(allow_download=False).source == str(idx_dir)


def test_explicit_dir_without_files_is_an_error(tmp_path):
    with pytest.raises(DataError, match="does not hold"):
        data.load_dataset(tmp_path, allow_download=False)


def test_env_var_without_files_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=f"\\${data.ENV_VAR} .*nowhere"):
        data.load_dataset(allow_download=False)


def test_nothing_found_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    with pytest.raises(DataError) as info:
        data.load_dataset(allow_download=False)
    text = str(info.value)
    assert str(tmp_path / "system") in text
    assert "apt-get install dataset-fashion-mnist" in text


def test_mismatched_image_and_label_counts(tmp_path):
    folder = make_idx_dataset(tmp_path / "d")
    write_idx(folder / data.FILES["y_test"], np.zeros(49, dtype=np.uint8))
    with pytest.raises(DataError, match="50 images but 49 labels"):
        data.load_from_dir(folder)


def test_to_model_input_scales_and_validates():
    x = np.full((2, 28, 28), 255, dtype=np.uint8)
    out = to_model_input(x, (28, 28, 1))
    assert out.shape == (2, 28, 28, 1) and out.dtype == np.float32 and out.max() == 1.0
    assert to_model_input(out, (28, 28, 1)) is not None
    with pytest.raises(ValueError, match="expected a batch of shape"):
        to_model_input(np.zeros((28, 28), dtype=np.uint8), (28, 28, 1))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        to_model_input(np.full((1, 28, 28, 1), 3.0, dtype=np.float32), (28, 28, 1))
    with pytest.raises(ValueError, match="dtype"):
        to_model_input(np.zeros((1, 28, 28), dtype=np.int64), (28, 28, 1))


def test_split_is_seeded_80_20():
    x, y = np.arange(100), np.arange(100)
    a = train_val_split(x, y, seed=42)
    b = train_val_split(x, y, seed=42)
    assert len(a[0]) == 80 and len(a[2]) == 20
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[2], train_val_split(x, y, seed=1)[2])
    assert set(a[0]) | set(a[2]) == set(range(100))


@needs_real_data
def test_real_dataset_shapes():
    dataset = data.load_dataset(REAL_DATA, allow_download=False)
    assert dataset.x_train.shape == (60000, 28, 28) and dataset.x_test.shape == (10000, 28, 28)
    assert sorted(np.unique(dataset.y_train)) == list(range(10))
