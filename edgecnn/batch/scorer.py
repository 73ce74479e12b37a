"""Score one chunk of a listing: the one code path of local worker processes and Ray actors.

A :class:`ChunkScorer` pickles small: its :class:`~edgecnn.runtime.Predictor`
pickles by reference (path and settings) and is loaded again on the other side,
once per process or actor, and a chunk is named by its index alone: its paths
are read from the listing at the chunk's byte offset, and its images from the
folder, both of which every worker sees.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..preprocess import ImageError
from ..runtime import Predictor

#: Images per runtime call within a chunk.
DEFAULT_BATCH = 64


@dataclass
class ChunkScorer:
    """Everything a worker needs to score chunk ``k``; call it with ``k``."""

    predictor: Predictor
    folder: str
    listing: str
    offsets: list[int]  # byte offset of each chunk's first line in the listing
    chunk_size: int
    count: int  # lines in the listing
    top_k: int = 1
    invert: str | bool = "auto"
    batch: int = DEFAULT_BATCH

    def paths(self, k: int) -> list[str]:
        """The listing's lines of chunk ``k``."""
        with open(self.listing, "rb") as lines:
            lines.seek(self.offsets[k])
            size = min(self.chunk_size, self.count - k * self.chunk_size)
            return [lines.readline().decode("utf-8").rstrip("\n") for _ in range(size)]

    def __call__(self, k: int) -> dict[str, Any]:
        """Chunk ``k``'s rows (path, top-k labels and probabilities) in listing order, and its unreadable images
        with the reason: plain lists, for a JSON part file."""
        rows: list[list[Any]] = []
        errors: list[list[str]] = []
        paths = self.paths(k)
        for start in range(0, len(paths), self.batch):
            good, tensors = [], []
            for path in paths[start:start + self.batch]:
                full = Path(self.folder) / path
                try:
                    tensors.append(self.predictor.image_input(full, invert=self.invert))
                    good.append(path)
                except ImageError as exc:
                    errors.append([path, _reason(exc, full)])
            if good:
                ranked = self.predictor.rank(self.predictor.predict(np.stack(tensors)), self.top_k)
                rows += [[path, [label for label, _ in top], [p for _, p in top]] for path, top in zip(good, ranked)]
        return {"chunk": k, "rows": rows, "errors": errors}


def _reason(exc: ImageError, full: Path) -> str:
    """The error without the file name it starts with (the errors file has a column for it)."""
    text = str(exc)
    return text[len(f"{full}: "):] if text.startswith(f"{full}: ") else text
