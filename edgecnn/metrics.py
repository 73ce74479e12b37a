"""Classification metrics on numpy arrays: no framework needed, so they run on a device.

Probabilities are (N, classes) arrays; labels are (N,) integer arrays. Accuracy
and agreement are fractions in [0, 1]; callers turn them into percent or points.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def top1(probs: np.ndarray) -> np.ndarray:
    """The predicted class of each row."""
    return np.asarray(probs).argmax(axis=1)


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of predictions equal to the labels."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if predicted.shape != labels.shape or predicted.size == 0:
        raise ValueError(f"need two equal non-empty label arrays, got {predicted.shape} and {labels.shape}")
    return float(np.mean(predicted == labels))


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    if labels.shape != predicted.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predicted.shape} differ in shape")
    if labels.size and (min(labels.min(), predicted.min()) < 0 or max(labels.max(), predicted.max()) >= classes):
        raise ValueError(f"a label is outside 0..{classes - 1}")
    return np.bincount(labels * classes + predicted, minlength=classes * classes).reshape(classes, classes)


def per_class_accuracy(matrix: np.ndarray) -> list[float | None]:
    """Recall of each true class from a confusion matrix; ``None`` for a class with no images."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1)
    return [float(matrix[i, i] / totals[i]) if totals[i] else None for i in range(len(matrix))]


@dataclass(frozen=True)
class ProbComparison:
    """How closely two sets of class probabilities for the same images agree."""

    images: int
    agreement: float  # fraction of images with the same top-1 class
    flipped_indices: np.ndarray  # images whose top-1 class differs
    max_abs_diff: float
    mean_abs_diff: float
    confident_agreement: float = 1.0  # agreement on the images the reference is not near a tie on (gated)
    near_tie_flips: int = 0  # flips where the reference's top-1 led by less than NEAR_TIE_MARGIN (not gated)

    @property
    def flipped(self) -> int:
        return int(len(self.flipped_indices))


#: A reference top-1 that leads its runner-up by less than this is a near tie: any rounding may flip it, so the
#: agreement gates count flips on the other images only. On Keras applications trained briefly on Fashion-MNIST,
#: 45-71% of the int8 flips and every float16 flip were near ties (README, "Agreement gates").
NEAR_TIE_MARGIN = 0.1


def confident(reference: np.ndarray) -> np.ndarray:
    """Which images the reference is not near a tie on (top-1 leads the runner-up by NEAR_TIE_MARGIN or more)."""
    if reference.shape[1] < 2:
        return np.ones(len(reference), dtype=bool)
    top = np.sort(reference, axis=1)
    return top[:, -1] - top[:, -2] >= NEAR_TIE_MARGIN


def confident_agreement(reference: np.ndarray, other_top1: np.ndarray) -> float:
    """Top-1 agreement on the images the reference is not near a tie on (1.0 when every image is a near tie)."""
    sure = confident(reference)
    return float(np.mean(top1(reference)[sure] == other_top1[sure])) if sure.any() else 1.0


def compare_probs(reference: np.ndarray, other: np.ndarray) -> ProbComparison:
    """Top-1 agreement and absolute probability differences of ``other`` against ``reference``."""
    reference = np.asarray(reference, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    if reference.shape != other.shape or reference.ndim != 2 or reference.shape[0] == 0:
        raise ValueError(f"need two equal (N, classes) probability arrays, got {reference.shape} and {other.shape}")
    flipped = np.flatnonzero(top1(reference) != top1(other))
    diff = np.abs(reference - other)
    return ProbComparison(
        images=int(reference.shape[0]),
        agreement=1.0 - len(flipped) / reference.shape[0],
        flipped_indices=flipped,
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        confident_agreement=confident_agreement(reference, top1(other)),
        near_tie_flips=int((~confident(reference)[flipped]).sum()),
    )
