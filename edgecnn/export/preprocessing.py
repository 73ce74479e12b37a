"""Decide a model's preprocessing at export: read from the model and its data, never assumed.

The result is recorded in the manifest and inside every exported file, and the
predictor, verify, bench and report all follow it. What the model says wins:
a leading ``Rescaling``/``Normalization`` layer fixes the input range, and the
outputs on the calibration images tell probabilities from logits.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import tfquiet
from ..datasets import Dataset
from ..errors import EdgecnnError
from ..model import detected_input_range
from ..preprocess import complete_preprocessing, to_model_input, to_pixels

#: A training image belongs to a dark-background set when its border's median pixel is below this (0..255).
DARK_BORDER = 32
#: Share of training images with a dark border that makes the whole set "dark" (auto-invert then applies).
DARK_SHARE = 0.9
#: Images whose outputs decide probabilities vs. logits.
OUTPUT_PROBE = 200


def decide_preprocessing(model, input_shape: tuple[int, int, int], data: Dataset | None, *,
                         input_range: str | None = None, resize: str | None = None,
                         notes: list[str] | None = None) -> dict[str, Any]:
    """The preprocessing dict of ``model`` (see :mod:`edgecnn.preprocess`), with notes on what was detected.

    ``input_range``/``resize`` are the user's choices; an input range that
    contradicts the model's own rescaling layer is refused rather than obeyed.
    """
    notes = notes if notes is not None else []
    detected = detected_input_range(model)
    if detected is not None:
        found, why = detected
        if input_range is not None and input_range != found:
            raise EdgecnnError(f"--input-range {input_range} contradicts the model: {why}, so it reads {found}")
        input_range = found
        notes.append(f"input range {found}: {why}")
    fashion = data is not None and data.info.get("kind") == "fashion-mnist"
    height, width, channels = input_shape
    preprocessing = complete_preprocessing({
        "height": height, "width": width, "channels": channels,
        "background": "dark" if fashion else _background(data),
        "input_range": input_range or "0-1",
        "resize": resize or ("fit" if fashion else "center-crop"),
        "output": "probabilities",
    })
    if data is not None:
        preprocessing["output"] = _output_kind(model, data, input_shape, preprocessing["input_range"])
        if preprocessing["output"] == "logits":
            notes.append("the model outputs logits (rows do not sum to 1): runtimes apply softmax")
    return preprocessing


def _background(data: Dataset | None) -> str | None:
    """"dark" when nearly every training image has a dark border (auto-invert applies), else None (never invert)."""
    if data is None or len(data.x_train) == 0:
        return None
    x = to_pixels(data.x_train[:1000])
    gray = x if x.ndim == 3 else x.mean(axis=-1)
    border = np.concatenate([gray[:, 0, :], gray[:, -1, :], gray[:, :, 0], gray[:, :, -1]], axis=1)
    dark = np.mean(np.median(border, axis=1) < DARK_BORDER)
    return "dark" if dark >= DARK_SHARE else None


def _output_kind(model, data: Dataset, input_shape: tuple[int, ...], input_range: str) -> str:
    """"probabilities" when every output row is non-negative and sums to 1, else "logits"."""
    x = to_model_input(data.x_train[:OUTPUT_PROBE], input_shape, input_range)
    with tfquiet.quiet():
        out = np.asarray(model.predict(x, batch_size=100, verbose=0), dtype=np.float64)
    is_probs = out.min() >= 0 and np.allclose(out.sum(axis=1), 1.0, atol=1e-3)
    return "probabilities" if is_probs else "logits"
