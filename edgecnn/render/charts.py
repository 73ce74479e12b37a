"""The report's pictures, as PNG bytes ready to embed (no files, no network).

Matplotlib (Agg, imported only here and only when a figure is drawn) makes the
charts; Pillow alone makes the small test-image thumbnails, which are many.
"""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np

OK_COLOR, BAD_COLOR, NEUTRAL_COLOR = "#2e7d32", "#c62828", "#607d8b"


def _pyplot():
    from ..errors import require

    matplotlib = require("matplotlib", feature="the report's charts")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plain(text: str, limit: int = 24) -> str:
    """Text for matplotlib shown literally (a ``$`` would start mathtext) and short enough for an axis label."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return text.replace("$", r"\$")


def _png(fig, dpi: int = 90) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    _pyplot().close(fig)
    return buffer.getvalue()


def as_pixels(image: np.ndarray) -> np.ndarray:
    """A test image as uint8 (H, W) or (H, W, 3)."""
    from ..preprocess import to_pixels

    return to_pixels(image).squeeze()


def thumbnail_png(image: np.ndarray, scale: int = 3) -> bytes:
    """A test image enlarged by pixel repetition (keeps the pixels sharp); gray ones inverted, as the samples chart."""
    from PIL import Image

    pixels = as_pixels(image)
    if pixels.ndim == 2:
        pixels = 255 - pixels  # dark on light
    big = Image.fromarray(pixels).resize((pixels.shape[1] * scale, pixels.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    return buffer.getvalue()


def confusion_png(matrix: Sequence[Sequence[int]], class_names: Sequence[str], title: str) -> bytes:
    """A confusion-matrix heatmap with the counts written in the cells (rows: true, columns: predicted)."""
    plt = _pyplot()
    counts = np.asarray(matrix, dtype=np.int64)
    n = counts.shape[0]
    names = [plain(c) for c in list(class_names)[:n]] + [str(i) for i in range(len(class_names), n)]
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    shown = np.log1p(counts)  # log scale so the off-diagonal errors are visible next to the large diagonal
    ax.imshow(shown, cmap="Blues")
    threshold = shown.max() * 0.6 if shown.size else 0
    for (row, col), value in np.ndenumerate(counts):
        ax.text(col, row, str(value), ha="center", va="center", fontsize=7,
                color="white" if shown[row, col] > threshold else "black")
    ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(plain(title), fontsize=10)
    fig.tight_layout()
    return _png(fig)


def latency_png(names: Sequence[str], p50_ms: Sequence[float], p99_ms: Sequence[float],
                throughput: Sequence[float | None], throughput_label: str) -> bytes:
    """Latency per image at batch 1 (p50 bar, p99 tick) beside throughput, one row per model."""
    plt = _pyplot()
    rows = np.arange(len(names))[::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.45 * len(names) + 1.4), sharey=True)
    left.barh(rows, p50_ms, color=NEUTRAL_COLOR, label="p50")
    left.scatter(p99_ms, rows, marker="|", s=200, color=BAD_COLOR, label="p99", zorder=3)
    for row, value in zip(rows, p50_ms):
        left.annotate(f"{value:.3g}", (value, row), xytext=(3, -3), textcoords="offset points", fontsize=8)
    left.set_yticks(rows, [plain(n) for n in names])
    values = [v for v in list(p50_ms) + list(p99_ms) if v and v > 0]
    if values and max(values) / min(values) > 30:  # Keras next to int8: a linear axis hides the small bars
        left.set_xscale("log")
        left.set_xlim(min(values) / 2, max(values) * 3)
        left.set_xlabel("milliseconds per call, batch 1 (log scale)")
    else:
        left.set_xlim(0, max(values + [1e-3]) * 1.25)
        left.set_xlabel("milliseconds per call, batch 1")
    left.legend(loc="lower right", fontsize=8)
    left.grid(axis="x", alpha=0.3)
    values = [t or 0.0 for t in throughput]
    right.barh(rows, values, color=OK_COLOR)
    for row, value in zip(rows, values):
        right.annotate(f"{value:,.0f}", (value, row), xytext=(3, -3), textcoords="offset points", fontsize=8)
    right.set_xlabel(plain(throughput_label, limit=60))
    right.set_xlim(0, max(values + [1.0]) * 1.2)
    right.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def samples_png(images: np.ndarray, probs: np.ndarray, labels: Sequence[int], class_names: Sequence[str],
                columns: int = 2) -> bytes:
    """Each test image beside the bar chart of its class probabilities (the predicted bar coloured)."""
    plt = _pyplot()
    count = len(images)
    rows = (count + columns - 1) // columns
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(5.2 * columns, 1.9 * rows),
                             gridspec_kw={"width_ratios": [1, 2.2] * columns}, squeeze=False)
    names = [plain(c) for c in class_names]
    for slot in range(rows * columns):
        image_ax, bars_ax = axes[slot // columns, 2 * (slot % columns)], axes[slot // columns, 2 * (slot % columns) + 1]
        if slot >= count:
            image_ax.axis("off")
            bars_ax.axis("off")
            continue
        p = np.asarray(probs[slot], dtype=np.float64)
        predicted, truth = int(np.argmax(p)), int(labels[slot])
        color = OK_COLOR if predicted == truth else BAD_COLOR
        image_ax.imshow(as_pixels(images[slot]), cmap="gray_r", vmin=0, vmax=255)
        image_ax.set_xticks([])
        image_ax.set_yticks([])
        image_ax.set_title(f"{names[predicted]} {p[predicted]:.0%}", fontsize=8, color=color)
        image_ax.set_xlabel(f"true: {names[truth]}", fontsize=7)
        bar_colors = [color if k == predicted else "#b0bec5" for k in range(len(p))]
        bars_ax.barh(np.arange(len(p))[::-1], p, color=bar_colors)
        bars_ax.set_yticks(np.arange(len(p))[::-1], names[:len(p)], fontsize=6.5)
        bars_ax.set_xlim(0, 1)
        bars_ax.tick_params(axis="x", labelsize=6.5)
    fig.tight_layout()
    return _png(fig, dpi=100)
