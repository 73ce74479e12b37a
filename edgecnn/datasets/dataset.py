"""The one in-memory form of a labelled image set, whatever shape it was kept in on disk."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Images, labels, class names and what the manifest records about where they came from.

    Images are uint8, (N, H, W) for gray or (N, H, W, C); a ``.npz`` may also
    give float32 in [0, 1]. Labels are 1-D integers. ``y_train`` is None only
    for a ``.npz`` of unlabelled calibration images; ``x_test``/``y_test`` are
    None when the data has no test set (a ``.npz`` without one).
    ``class_names`` is None when the data does not name its classes (a ``.npz``
    without ``class_names``): the model's outputs then decide, see :meth:`names`.
    ``info`` is the manifest's record: kind, path, split, counts, fingerprint.
    """

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: tuple[str, ...] | None
    source: str
    info: dict = field(default_factory=dict)
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image; gray (N, H, W) data is (H, W, 1)."""
        shape = tuple(int(d) for d in self.x_train.shape[1:])
        return (*shape, 1) if len(shape) == 2 else shape  # type: ignore[return-value]

    def names(self, classes: int) -> tuple[str, ...]:
        """The class names, or "0".."classes-1" when the data names none."""
        return self.class_names if self.class_names is not None else tuple(str(i) for i in range(classes))


def fingerprint(root: str | os.PathLike, files: Iterable[str | os.PathLike]) -> str:
    """sha256 over the sorted "relative/path<TAB>size" lines of ``files``.

    It changes when a file is added, removed, renamed or resized, and costs one
    ``stat`` per file (no file is read).
    """
    root = Path(root)
    lines = sorted(f"{Path(f).relative_to(root).as_posix()}\t{Path(f).stat().st_size}\n" for f in files)
    return hashlib.sha256("".join(lines).encode()).hexdigest()
