"""Fashion-MNIST: IDX reader, dataset search path and class names.

The IDX files are read with numpy alone, so the data loads on the base install
and on machines without internet (Debian's ``dataset-fashion-mnist`` package).
Keras's downloader is only the last resort.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import Dataset, fingerprint

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
INPUT_SHAPE: tuple[int, int, int] = (28, 28, 1)

ENV_VAR = "EDGECNN_DATA_DIR"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
_IDX_UBYTE = 0x08


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or not) into a uint8 array.

    Checks the magic number, the declared dimensions and that the payload holds
    exactly the declared number of items; any problem is a :class:`DataError`
    naming the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not an IDX file") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(f"{path} is a truncated or corrupt gzip file ({exc})") from None
    if len(raw) < 4:
        raise DataError(f"{path} is too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or dtype != _IDX_UBYTE or not 1 <= ndim <= 4:
        raise DataError(f"{path} has a wrong magic number 0x{raw[:4].hex()} (expected 0x000008 followed by 1-4 dimensions)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated inside its header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(raw) - header
    if payload != expected:
        raise DataError(f"{path} holds {payload} bytes of data but its header declares {dims} = {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where to look for the IDX files, in order: option, environment, system package."""
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]))
    dirs.append(SYSTEM_DIR)
    return dirs


def load_from_dir(folder: str | os.PathLike) -> Dataset:
    """Load and validate the four IDX files of one folder."""
    folder = Path(folder)
    arrays = {key: read_idx(folder / name) for key, name in FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or labels.ndim != 1:
            raise DataError(f"{folder / FILES['x_' + split]}: expected images (N,H,W) and labels (N,), got {images.shape} and {labels.shape}")
        if len(images) != len(labels):
            raise DataError(f"{folder}: {split} has {len(images)} images but {len(labels)} labels")
        if labels.size and labels.max() >= len(CLASS_NAMES):
            raise DataError(f"{folder / FILES['y_' + split]}: label {labels.max()} is outside 0..{len(CLASS_NAMES) - 1}")
    return _dataset(arrays, source=str(folder), path=str(folder.resolve()),
                    digest=fingerprint(folder, [folder / name for name in FILES.values()]))


def has_idx_files(folder: str | os.PathLike) -> bool:
    """Whether the folder holds the four Fashion-MNIST IDX files."""
    return all((Path(folder) / name).is_file() for name in FILES.values())


def _dataset(arrays: dict[str, np.ndarray], *, source: str, path: str, digest: str) -> Dataset:
    """Fashion-MNIST's Dataset; ``source`` stays the bare folder, which training records and the report reads back."""
    info = {"kind": "fashion-mnist", "path": path, "split": {"test": "file"},
            "counts": {"train": int(len(arrays["x_train"])), "test": int(len(arrays["x_test"]))}, "fingerprint": digest}
    return Dataset(**arrays, class_names=CLASS_NAMES, source=source, info=info)


def load_dataset(data_dir: str | os.PathLike | None = None, *, allow_download: bool = True) -> Dataset:
    """Find and load Fashion-MNIST.

    An explicit ``data_dir`` or ``$EDGECNN_DATA_DIR`` that lacks the files is an
    error (the user asked for it: silently training on other data would surprise);
    otherwise the search goes on to the Debian package folder and finally Keras's
    downloader.
    """
    looked = []
    explicit = {Path(p) for p in (data_dir, os.environ.get(ENV_VAR)) if p}
    for folder in candidate_dirs(data_dir):
        if has_idx_files(folder):
            return load_from_dir(folder)
        present = [name for name in FILES.values() if (folder / name).is_file()]
        state = "missing" if not folder.exists() else ("not a folder" if not folder.is_dir() else
                                                     f"{len(present)} of {len(FILES)} files")
        looked.append(f"{folder} ({state})")
        if folder in explicit:
            lacking = [str(folder / name) + (" is a folder" if (folder / name).is_dir() else " not found")
                       for name in FILES.values() if name not in present]
            detail = f"; {', '.join(lacking)}" if present else f"; expected {', '.join(FILES.values())}"
            origin = f"${ENV_VAR}" if not data_dir or folder != Path(data_dir) else "data folder"
            raise DataError(f"{origin} {folder} does not hold the Fashion-MNIST IDX files ({state}{detail})")
    if allow_download:
        dataset = _download_with_keras()
        if dataset is not None:
            return dataset
        looked.append("Keras's downloader (failed: no TensorFlow or no internet)")
    raise DataError(
        "Fashion-MNIST not found; looked in: " + "; ".join(looked)
        + ". Get it with `apt-get install dataset-fashion-mnist` (Debian), or put the four "
        + f"*-ubyte.gz files in a folder and pass --data-dir or set {ENV_VAR}"
    )


def _download_with_keras() -> Dataset | None:
    try:
        from keras.datasets import fashion_mnist
    except ImportError:
        return None
    try:
        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    except Exception:  # any network or cache failure means "not available here"
        return None
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    digest = hashlib.sha256()  # no files to list: the arrays themselves
    for array in arrays.values():
        digest.update(np.ascontiguousarray(array))
    return _dataset(arrays, source="keras.datasets.fashion_mnist", path="keras.datasets.fashion_mnist",
                    digest=digest.hexdigest())
