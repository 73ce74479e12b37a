"""Seeded, reproducible splits of a labelled image set: train/validation and calibration picks."""
from __future__ import annotations

import numpy as np


def train_val_split(x: np.ndarray, y: np.ndarray, *, val_fraction: float = 0.2,
                    seed: int = 42) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded shuffled 80/20 split, as the reference does with train_test_split."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def calibration_indices(total: int, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``n`` of ``total`` images drawn without replacement with a fixed seed."""
    if n < 1:
        raise ValueError(f"calibration needs at least 1 image, got {n}")
    return np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))


def calibration_images(x_train: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` training images drawn without replacement with a fixed seed."""
    return x_train[calibration_indices(len(x_train), n, seed)]


def held_out_indices(total: int, exclude: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    """Sorted indices of up to ``n`` of ``total`` images, none in ``exclude``, drawn with a fixed seed.

    Mixed precision is chosen on these: images that neither calibrated the
    model nor belong to the test set that verify keeps untouched.
    """
    pool = np.setdiff1d(np.arange(total), exclude)
    return np.sort(np.random.default_rng(seed).choice(pool, size=min(n, len(pool)), replace=False))
