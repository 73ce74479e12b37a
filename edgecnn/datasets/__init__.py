"""Where labelled images come from: Fashion-MNIST's IDX files (the default), class folders, .npz; seeded splits."""
from __future__ import annotations

from .dataset import Dataset
from .fashion_mnist import CLASS_NAMES, INPUT_SHAPE, load_dataset
from .folders import load_folders
from .load import check_fits, load_data
from .npz import load_npz
from .splits import calibration_images, train_val_split

__all__ = ["CLASS_NAMES", "INPUT_SHAPE", "Dataset", "calibration_images", "check_fits", "load_data",
           "load_dataset", "load_folders", "load_npz", "train_val_split"]
