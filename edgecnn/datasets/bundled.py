"""The labelled images a model is exported, verified, benched and reported with.

Export reads a model's data once (``--data``, or Fashion-MNIST when the model
fits it) and records it in the manifest; verify, bench and the report find the
same test set again: ``--data`` when given, else the compact copy of the test
split the exporter keeps in the bundle (the very images of the reference, no
decoding), else the recorded data while it is unchanged. No path assumes
Fashion-MNIST unless the model has its shape and nothing else is recorded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle.files import TEST_SET_FILE
from ..bundle.schema import DataSection, Manifest
from ..errors import DataError
from ..fileio import sha256_file, write_npz
from .dataset import Dataset
from .fashion_mnist import CLASS_NAMES, INPUT_SHAPE
from .load import check_fits, load_data

#: The compact test-set copy is kept when the data is not Fashion-MNIST (which Debian ships) and at most this big.
MAX_TEST_SET_BYTES = 64 * 2**20


class AlteredTestSetError(DataError):
    """The bundle's test-set copy no longer matches its manifest: an error wherever it is read, never a fallback."""


@dataclass(frozen=True)
class TestSet:
    """Test images (uint8 pixels, or floats in [0, 1]), their labels and where they came from."""

    x: np.ndarray
    y: np.ndarray
    source: str


def fits_fashion_mnist(input_shape: tuple[int, ...], classes: int) -> bool:
    return tuple(input_shape) == INPUT_SHAPE and classes == len(CLASS_NAMES)


def load_for_model(path: str | os.PathLike | None, input_shape: tuple[int, int, int], classes: int, *,
                   resize: str = "center-crop", progress: bool = False) -> Dataset:
    """The data at ``path`` sized for the model (Fashion-MNIST when None and the model fits it), checked against it."""
    if path is None and not fits_fashion_mnist(input_shape, classes):
        height, width, channels = input_shape
        raise DataError(f"the model takes {height}x{width}x{channels} images and has {classes} classes, not "
                        "Fashion-MNIST's 28x28x1 and 10: pass --data PATH (class folders, a .npz, or an IDX folder)")
    data = load_data(path, image_size=tuple(input_shape[:2]), channels=input_shape[2], resize=resize,
                     progress=progress)
    check_fits(data, input_shape, classes)
    return data


def data_section(data: Dataset, folder: Path) -> dict[str, Any]:
    """The manifest's record of the data, plus the compact copy of its test split for data that may move."""
    section = {**data.info, "source": data.source}
    if data.x_test is None or data.info.get("kind") == "fashion-mnist" or data.x_test.nbytes > MAX_TEST_SET_BYTES:
        return section
    path = write_npz(folder / TEST_SET_FILE, x_test=data.x_test, y_test=np.asarray(data.y_test, dtype=np.int64))
    return {**section, "test_set_file": TEST_SET_FILE, "test_set_sha256": sha256_file(path),
            "test_set_bytes": path.stat().st_size}


def bundle_test_set(folder: Path, recorded: DataSection | None, data: str | os.PathLike | None, *,
                    input_shape: tuple[int, int, int] | None, classes: int | None,
                    resize: str = "center-crop") -> TestSet:
    """The bundle's test set: ``data`` when given, else the bundle's copy, else the recorded data while unchanged.

    Bundles made before data was recorded (or bare model files) fall back to
    Fashion-MNIST only when the model has its shape; otherwise one line says what to pass.
    """
    if data is not None:
        return _test_split(_load(data, input_shape, classes, resize))
    problem = "its manifest records no data"
    if recorded is not None:
        copy = _bundled_copy(folder, recorded)
        if copy is not None:
            return copy
        path = recorded.path
        if recorded.kind == "fashion-mnist":
            return _test_split(_load(path if path and Path(path).is_dir() else None, input_shape, classes, resize))
        if path and Path(path).exists():
            loaded = _load(path, input_shape, classes, resize)
            if loaded.info.get("fingerprint") == recorded.fingerprint:
                return _test_split(loaded)
            problem = f"the data at {path} changed since export (its fingerprint differs)"
        else:
            problem = f"the data recorded at export, {path}, is gone" if path else "its data has no recorded path"
    if recorded is None and (input_shape is None or fits_fashion_mnist(input_shape, classes or 0)):
        return _test_split(_load(None, INPUT_SHAPE, len(CLASS_NAMES), resize))
    raise DataError(f"no test images for {folder}: {problem}; pass --data PATH (the class folders or .npz "
                    "the model was exported with)")


def test_set_of(folder: Path, manifest: Manifest | None, data: str | os.PathLike | None) -> TestSet:
    """:func:`bundle_test_set` of a bundle folder, its manifest giving the model's shape, classes and resize."""
    model = manifest.model if manifest else None
    return bundle_test_set(folder, manifest.data if manifest else None, data,
                           input_shape=tuple(model.input_shape) if model else None,
                           classes=model.classes if model else None,
                           resize=((manifest.preprocessing if manifest else None) or {}).get("resize", "center-crop"))


def _load(path, input_shape, classes, resize) -> Dataset:
    if input_shape is None or classes is None:  # a folder of bare model files: the data's own size
        return load_data(path, resize=resize)
    return load_for_model(path, input_shape, classes, resize=resize)


def _test_split(data: Dataset) -> TestSet:
    if data.x_test is None:
        raise DataError(f"{data.source} has no test images (a .npz needs 'x_test' and 'y_test')")
    return TestSet(data.x_test, np.asarray(data.y_test), f"test split of {data.source}")


def _bundled_copy(folder: Path, recorded: DataSection) -> TestSet | None:
    """The compact copy kept at export, when it is there and unaltered (sha256 from the manifest)."""
    path = folder / recorded.test_set_file if recorded.test_set_file else None
    if path is None or not path.is_file():
        return None
    if sha256_file(path) != recorded.test_set_sha256:
        raise AlteredTestSetError(f"{path} does not match the sha256 in its manifest: the test set copy was altered")
    with np.load(path, allow_pickle=False) as saved:
        return TestSet(saved["x_test"], saved["y_test"], f"{path} (copy of the test split of {recorded.source})")
