"""Where labelled images come from: Fashion-MNIST's IDX files (the default), and seeded splits."""
from __future__ import annotations

from .fashion_mnist import CLASS_NAMES, INPUT_SHAPE, Dataset, load_dataset
from .splits import calibration_images, train_val_split

__all__ = ["CLASS_NAMES", "INPUT_SHAPE", "Dataset", "calibration_images", "load_dataset", "train_val_split"]
