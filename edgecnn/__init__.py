"""edgecnn: take a Keras image classifier from training to the edge.

``import edgecnn`` is light: it never imports TensorFlow. The deploy API is
:class:`edgecnn.Predictor`; training and export live in submodules that import
TensorFlow only when called.
"""
from __future__ import annotations

from .datasets.fashion_mnist import CLASS_NAMES
from .errors import EdgecnnError

__version__ = "0.1.0"
__all__ = ["CLASS_NAMES", "EdgecnnError", "Predictor", "__version__"]


def __getattr__(name: str):
    if name == "Predictor":
        from .runtime import Predictor

        return Predictor
    raise AttributeError(f"module 'edgecnn' has no attribute {name!r}")
