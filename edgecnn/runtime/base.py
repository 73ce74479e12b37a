"""What every runtime backend provides, so the Predictor can treat them alike.

A backend wraps one runtime (onnxruntime, LiteRT, Keras) around one model file
and exposes the facts the Predictor needs (input shape, classes, dtypes and
quantization) plus :meth:`Backend.run_native`: the bare runtime call on input
that is already in the model's own dtype. The benchmark times ``run_native`` as
the "raw runtime" baseline, so it must stay a thin call.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import ModelFileError

#: Images per runtime call when predicting a large batch: bounds the memory of
#: the activations (the first conv layer of the reference is 100 KB per image).
DEFAULT_MAX_BATCH = 256


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: ``real = (q - zero_point) * scale``."""

    scale: float
    zero_point: int


class Backend(ABC):
    """One loaded model on one runtime. Subclasses set the attributes in ``__init__``."""

    name: ClassVar[str]
    path: Path
    input_shape: tuple[int, int, int]  # (H, W, C), without the batch axis
    num_classes: int
    input_dtype: np.dtype
    output_dtype: np.dtype
    input_quant: Quantization | None = None
    output_quant: Quantization | None = None
    #: Largest batch passed to one ``run_native`` call (1 for fixed-batch models).
    max_batch: int = DEFAULT_MAX_BATCH
    #: Key/value metadata stored inside the model file (ONNX ``metadata_props``; a TFLite file's model card in the
    #: same keys, see :func:`edgecnn.model_card.card_metadata`).
    metadata: dict[str, str]
    #: Precision read from the model itself, named as the exporters name it:
    #: "float32", "float16", "dynamic" (int8 weights, float activations) or "int8".
    precision: str
    #: (input range, why) that the model's own layers fix, e.g. a Keras model's leading ``Rescaling``; None when the
    #: file cannot tell (an export's card records it instead).
    own_input_range: tuple[str, str] | None = None

    @abstractmethod
    def run_native(self, x: np.ndarray) -> np.ndarray:
        """Run the model on a batch already in ``input_dtype`` and shape (N, H, W, C); raw outputs."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32, max-subtracted: how a logits model's outputs become probabilities everywhere."""
    z = np.asarray(logits, dtype=np.float32)
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def image_input_shape(path: Path, dims: tuple, what: str) -> tuple[int, int, int]:
    """Check that an input shape (without batch) is an NHWC image with 1 or 3 channels."""
    if len(dims) != 3 or not all(isinstance(d, (int, np.integer)) and d > 0 for d in dims) or dims[-1] not in (1, 3):
        raise ModelFileError(f"{path}: expected an image classifier with input (N, H, W, C) and C = 1 or 3, "
                             f"got {what} {tuple(dims)}")
    return tuple(int(d) for d in dims)  # type: ignore[return-value]


#: More runtime threads than this is a typo, not a request: runtimes would try to start them all and hang.
MAX_THREADS = 256


def check_threads(threads: int | None) -> None:
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                or not 1 <= threads <= MAX_THREADS):
        raise ValueError(f"threads must be an integer from 1 to {MAX_THREADS} or None, got {threads!r}")
