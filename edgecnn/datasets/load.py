"""One entry point for data in the shapes users keep it, and the check that it fits a model."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import Dataset
from .fashion_mnist import FILES, has_idx_files, load_dataset, load_from_dir
from .folders import load_folders
from .npz import load_npz

ACCEPTED = ("a .npz file, a folder of class folders (<class>/<image> or train/<class>/<image>), "
            "or a folder holding the four Fashion-MNIST IDX files")


def load_data(path: str | os.PathLike | None = None, *, image_size: tuple[int, int] | None = None,
              channels: int | None = None, resize: str = "center-crop", allow_download: bool = False,
              progress: bool = False) -> Dataset:
    """Load ``path`` by what it is: None is Fashion-MNIST (searched as :func:`load_dataset` does).

    ``image_size``, ``channels`` and ``resize`` apply to class folders, whose
    images are decoded to that size; arrays (``.npz``, IDX) keep theirs.
    """
    if path is None:
        return load_dataset(allow_download=allow_download)
    path = Path(path)
    if not path.exists():
        raise DataError(f"data {path} not found; expected {ACCEPTED}")
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return load_npz(path)
        raise DataError(f"data {path} is a file, not a .npz; expected {ACCEPTED}")
    if any((path / name).exists() for name in FILES.values()):  # (some of) the IDX files: say which are wrong
        return load_dataset(path) if not has_idx_files(path) else load_from_dir(path)
    return load_folders(path, image_size=image_size, channels=channels, resize=resize, progress=progress)


def check_fits(data: Dataset, input_shape: tuple[int, int, int], classes: int) -> None:
    """A :class:`DataError` unless the data's classes and image shape are the model's."""
    names = data.class_names
    if names is not None and len(names) != classes:
        listed = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise DataError(f"{data.source} has {len(names)} classes ({listed}) but the model outputs {classes}")
    for split, labels in (("train", data.y_train), ("test", data.y_test), ("val", data.y_val)):
        if labels is not None and labels.size and int(np.max(labels)) >= classes:
            raise DataError(f"{data.source}: {split} label {int(np.max(labels))} is outside the model's "
                            f"{classes} classes (0..{classes - 1})")
    want = tuple(int(d) for d in input_shape)
    if data.image_shape != want:
        raise DataError(f"{data.source} holds {'x'.join(map(str, data.image_shape))} images but the model takes "
                        f"{'x'.join(map(str, want))}")
