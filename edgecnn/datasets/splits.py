"""Seeded, reproducible splits of a labelled image set: train/validation and calibration picks."""
from __future__ import annotations

import numpy as np


def split_indices(total: int, fraction: float, seed: int, *,
                  both_non_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) indices of a seeded shuffle of ``total`` items; ``fraction`` of them (rounded) held out.

    ``both_non_empty`` moves the cut so that each side keeps at least one item
    (``total`` must then be at least 2).
    """
    order = np.random.default_rng(seed).permutation(total)
    n_out = int(round(total * fraction))
    if both_non_empty:
        n_out = min(max(n_out, 1), total - 1)
    return order[n_out:], order[:n_out]


def train_val_split(x: np.ndarray, y: np.ndarray, *, val_fraction: float = 0.2,
                    seed: int = 42) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded shuffled 80/20 split, as the reference does with train_test_split."""
    train, val = split_indices(len(x), val_fraction, seed)
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
