"""Shared test helpers: run the CLI in a subprocess, make small IDX datasets."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgecnn.datasets.fashion_mnist import FILES, SYSTEM_DIR

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = SYSTEM_DIR if all((SYSTEM_DIR / f).is_file() for f in FILES.values()) else None

needs_real_data = pytest.mark.skipif(REAL_DATA is None, reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")


def run_cli(*args: str, cwd: Path | str | None = None, env: dict | None = None, timeout: float = 600,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m edgecnn ARGS`` and capture its output as text."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str, code: int | None = None) -> str:
    """A clean failure: non-zero (or ``code``), an ``error:`` line naming the problem, no traceback."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def write_idx(path: Path, array: np.ndarray, *, compress: bool = True) -> Path:
    """Write a uint8 array as an IDX file (the inverse of data.read_idx)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def make_idx_dataset(folder: Path, n_train: int = 200, n_test: int = 50, seed: int = 0) -> Path:
    """A small synthetic Fashion-MNIST-shaped dataset in IDX files."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, name in FILES.items():
        write_idx(folder / name, arrays[key])
    return folder


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    return make_idx_dataset(tmp_path / "idx")


_SHARED: dict[str, Path] = {}


def shared_bundle(tmp_path_factory) -> Path:
    """A tiny trained model with every export, its manifest and reference, built once per session.

    Read-only for tests: copy it before changing anything. Its IDX data (600
    training, 300 test images, synthetic) is in ``shared_data(...)``.
    """
    if "bundle" not in _SHARED:
        from edgecnn.export import export_model
        from edgecnn.train import TrainConfig, train

        root = tmp_path_factory.mktemp("shared")
        data = make_idx_dataset(root / "idx", n_train=600, n_test=300)
        bundle = root / "bundle"
        train(TrainConfig(out=bundle, epochs=1, data_dir=data))
        export_model(bundle / "model.keras", ("all",), calibration_samples=100, data_dir=data)
        _SHARED.update(bundle=bundle, data=data)
    return _SHARED["bundle"]


def shared_data(tmp_path_factory) -> Path:
    shared_bundle(tmp_path_factory)
    return _SHARED["data"]


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """The shared tiny bundle (read-only: copy it before changing anything)."""
    return shared_bundle(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """The synthetic IDX dataset the tiny bundle was trained on."""
    return shared_data(tmp_path_factory)
