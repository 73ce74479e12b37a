"""``edgecnn summary``: the layer table and the architecture diagram of a model."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .bundle.files import MODEL_FILE, default_bundle
from .fileio import ensure_writable_dir
from .model import build_model, format_layer_table, layer_table, load_model
from .train import write_summary


@dataclass
class SummaryResult:
    table: str
    diagram: Path | None
    notes: list[str] = field(default_factory=list)


def summarize(model_path: str | os.PathLike | None = None, *, out: str | os.PathLike | None = None,
              unsafe: bool = False) -> SummaryResult:
    """Layer table of ``model_path`` (default: the reference bundle's model, else the untrained architecture)."""
    if model_path is None:
        candidate = default_bundle() / MODEL_FILE
        model = load_model(candidate, unsafe=unsafe) if candidate.exists() else build_model()
        folder = Path(out) if out else default_bundle()
    else:
        model = load_model(model_path, unsafe=unsafe)
        folder = Path(out) if out else Path(model_path).parent
    folder = ensure_writable_dir(folder)
    written, notes = write_summary(model, folder)
    diagram = next((p for p in written if p.suffix == ".png"), None)
    return SummaryResult(format_layer_table(layer_table(model)), diagram, notes)
