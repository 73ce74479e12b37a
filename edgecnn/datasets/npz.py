"""A user's ``.npz``: images ``x`` (or ``x_train``), optional labels, test set and class names.

Everything is checked on load, so a wrong file fails before any training or
conversion starts, with one line naming the file and the array. Arrays are
read with ``allow_pickle=False``: a ``.npz`` can hold no code.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError, first_line
from ..preprocess import check_pixels
from .dataset import Dataset, fingerprint


def load_npz(path: str | os.PathLike) -> Dataset:
    """Read ``x``/``x_train`` (uint8 0..255 or float [0, 1], (N, H, W) or (N, H, W, 1|3)) and what goes with it.

    - ``y``/``y_train``: integer labels; optional, for calibration-only files
      (then ``y_train`` is None and the data cannot validate or train);
    - ``x_test`` and ``y_test``: both or neither (else ``x_test`` is None);
    - ``class_names``: strings; without them ``class_names`` is None and the
      model's outputs decide (:meth:`Dataset.names`).
    """
    path = Path(path)
    arrays = _read(path)
    key = "x" if "x" in arrays else "x_train" if "x_train" in arrays else None
    if key is None:
        raise DataError(f"{path} has no array 'x' or 'x_train' (found: {', '.join(arrays) or 'none'})")
    x = _images(arrays[key], f"{path}: array '{key}'")
    label_key = {"x": "y", "x_train": "y_train"}[key]
    y = _labels(arrays[label_key], len(x), f"{path}: array '{label_key}'") if label_key in arrays else None
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path} must hold both 'x_test' and 'y_test' or neither")
    x_test = y_test = None
    if "x_test" in arrays:
        x_test = _images(arrays["x_test"], f"{path}: array 'x_test'")
        if _shape(x_test) != _shape(x):
            raise DataError(f"{path}: array 'x_test' holds {_shape(x_test)} images but '{key}' holds {_shape(x)}")
        y_test = _labels(arrays["y_test"], len(x_test), f"{path}: array 'y_test'")
    names = None
    if "class_names" in arrays:
        names = arrays["class_names"]
        if names.ndim != 1 or len(names) < 1 or names.dtype.kind != "U":
            raise DataError(f"{path}: array 'class_names' must be a 1-D array of strings, "
                            f"got {names.dtype} {names.shape}")
        names = tuple(str(n) for n in names)
        top = max((int(labels.max()) for labels in (y, y_test) if labels is not None and labels.size), default=-1)
        if top >= len(names):
            raise DataError(f"{path}: label {top} is outside the {len(names)} class names (0..{len(names) - 1})")
    counts = {"train": len(x), **({"test": len(x_test)} if x_test is not None else {})}
    info = {"kind": "npz", "path": str(path.resolve()), "split": {"test": "file" if x_test is not None else None},
            "counts": counts, "fingerprint": fingerprint(path.parent, [path])}
    return Dataset(x, y, x_test, y_test, names, source=str(path), info=info)


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"data file {path} not found" if not path.exists()
                        else f"{path} is a folder, expected a .npz file")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not a .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as loaded:
            return {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npz file ({first_line(exc)})") from None


def _shape(x: np.ndarray) -> tuple[int, ...]:
    """(H, W, C) of one image."""
    return (*x.shape[1:], 1) if x.ndim == 3 else tuple(x.shape[1:])


def _images(x: np.ndarray, what: str) -> np.ndarray:
    if x.ndim not in (3, 4) or len(x) < 1 or (x.ndim == 4 and x.shape[-1] not in (1, 3)):
        raise DataError(f"{what}: expected images (N, H, W) or (N, H, W, C) with N >= 1 and C 1 or 3, got {x.shape}")
    try:
        check_pixels(x)
    except ValueError as exc:
        raise DataError(f"{what}: {exc}") from None
    return x


def _labels(y: np.ndarray, n: int, what: str) -> np.ndarray:
    if y.ndim != 1 or len(y) != n or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise DataError(f"{what}: expected {n} non-negative integer labels, got {y.dtype} {y.shape}")
    return y.astype(np.int64)
