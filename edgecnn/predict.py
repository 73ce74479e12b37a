"""``edgecnn predict``: classify image files and folders, one failure never stopping the rest.

The model is loaded first (a model problem stops everything, exit 2); then each
image is decoded on its own, so a broken file is reported with its name and the
other images are still predicted (exit 1 when any failed).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .bundle.files import default_bundle
from .errors import EdgecnnError, ModelFileError, require
from .fileio import atomic_path
from .preprocess import ImageError, image_files
from .runtime import Prediction, Predictor

DEFAULT_MODEL_FILE = "model_int8.tflite"
#: Panels drawn by --plot; more images than this are predicted but not all drawn.
MAX_PLOT_PANELS = 60


def default_model() -> Path:
    """The int8 TFLite model of the default bundle."""
    return default_bundle() / DEFAULT_MODEL_FILE


@dataclass(frozen=True)
class ImagePrediction:
    """One input: its top-k classes and all probabilities, or the error that stopped it."""

    file: str
    top: list[Prediction] = field(default_factory=list)
    probabilities: np.ndarray | None = None
    error: str | None = None


@dataclass
class PredictReport:
    """Everything ``edgecnn predict`` prints, as data."""

    model: Path
    backend: str
    precision: str
    classes: tuple[str, ...]
    images: list[ImagePrediction]
    notes: list[str] = field(default_factory=list)
    plot: Path | None = None

    @property
    def failed(self) -> list[ImagePrediction]:
        return [item for item in self.images if item.error is not None]

    def lines(self) -> list[str]:
        """One line per predicted image: ``file: label (p%), label (p%)``."""
        return [f"{item.file}: " + ", ".join(f"{label} ({100 * p:.1f}%)" for label, p in item.top)
                for item in self.images if item.error is None]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``--json``."""
        images = []
        for item in self.images:
            if item.error is not None:
                images.append({"file": item.file, "error": item.error})
                continue
            images.append({
                "file": item.file,
                "top_k": [{"label": label, "probability": p} for label, p in item.top],
                "probabilities": {name: float(p) for name, p in zip(self.classes, item.probabilities)},
                "error": None,
            })
        return {"model": str(self.model), "backend": self.backend, "precision": self.precision,
                "classes": list(self.classes), "images": images, "failed": len(self.failed)}


def predict_paths(paths: Iterable[str | os.PathLike], *, model: str | os.PathLike | None = None, top_k: int = 3,
                  invert: str | bool = "auto", threads: int | None = None,
                  plot: str | os.PathLike | None = None) -> PredictReport:
    """Classify image files (folders: every image in them); per-image errors are collected, not raised."""
    if plot is not None:
        require("matplotlib", feature="--plot")
        _check_plot_format(Path(plot))
    model_path = Path(model) if model is not None else default_model()
    if model is None and not model_path.exists():
        raise ModelFileError(f"default model {model_path} not found: run `edgecnn export` first or pass --model")
    predictor = Predictor.load(model_path, threads=threads)
    entries: list[tuple[str, np.ndarray | None, str | None]] = []
    for arg in paths:
        try:
            files = image_files([arg])
        except ImageError as exc:
            entries.append((str(arg), None, str(exc)))
            continue
        for file in files:
            try:
                entries.append((str(file), predictor.image_input(file, invert=invert), None))
            except ImageError as exc:
                entries.append((str(file), None, str(exc)))
    good = [tensor for _, tensor, _ in entries if tensor is not None]
    probabilities = iter(predictor.predict(np.stack(good)) if good else [])
    images = []
    for file, tensor, error in entries:
        if error is not None:
            images.append(ImagePrediction(file, error=error))
        else:
            row = next(probabilities)
            images.append(ImagePrediction(file, predictor.rank(row[np.newaxis], top_k)[0], row))
    report = PredictReport(predictor.path, predictor.backend, predictor.precision, predictor.classes, images,
                           notes=list(predictor.notes))
    if plot is not None:
        drawn = [item for item in images if item.error is None]
        if drawn:
            report.plot = plot_probabilities(drawn[:MAX_PLOT_PANELS], predictor.classes, plot)
            if len(drawn) > MAX_PLOT_PANELS:
                report.notes.append(f"the plot shows the first {MAX_PLOT_PANELS} of {len(drawn)} images")
        else:
            report.notes.append("no plot written: no image was predicted")
    return report


def _check_plot_format(target: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    formats = FigureCanvasAgg.get_supported_filetypes()
    if target.suffix.lower().lstrip(".") not in formats:
        raise EdgecnnError(f"cannot write plot {target}: unknown image type '{target.suffix}' "
                           f"(use one of {', '.join('.' + f for f in sorted(formats))})")


def plot_probabilities(items: Sequence[ImagePrediction], classes: Sequence[str],
                       target: str | os.PathLike) -> Path:
    """A bar chart of class probabilities, one panel per image, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, safe in threads and servers

    target = Path(target)
    columns = min(4, len(items))
    rows = -(-len(items) // columns)
    figure = Figure(figsize=(3.6 * columns, 0.25 * len(classes) * rows + 0.9 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    positions = np.arange(len(classes))
    for index, item in enumerate(items):
        axes = figure.add_subplot(rows, columns, index + 1)
        best = int(np.argmax(item.probabilities))
        colors = ["tab:blue" if i == best else "tab:gray" for i in positions]
        axes.barh(positions, item.probabilities, color=colors)
        axes.set_yticks(positions, classes, fontsize=8)
        axes.invert_yaxis()
        axes.set_xlim(0, 1)
        axes.tick_params(axis="x", labelsize=7)
        axes.set_title(f"{Path(item.file).name}\n{classes[best]} ({100 * item.probabilities[best]:.1f}%)", fontsize=9)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format=target.suffix.lower().lstrip("."), dpi=100)
    return target
