"""Score one chunk of a listing: the one code path of local worker processes and Ray actors.

A :class:`ChunkScorer` pickles small: its :class:`~edgecnn.runtime.Predictor`
pickles by reference (path and settings) and is loaded again on the other side,
once per process or actor, and a chunk travels as a :class:`Chunk`, three
numbers: its paths are read from the listing at its byte offset, and its images
from the folder, both of which every worker sees.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..preprocess import ImageError
from ..runtime import Predictor

#: Images per runtime call within a chunk.
DEFAULT_BATCH = 64


class Chunk(NamedTuple):
    """A run of lines of the listing: its index, the byte offset of its first line, and its number of lines."""

    index: int
    offset: int
    size: int


@dataclass
class ChunkScorer:
    """Everything a worker needs to score chunks of one listing; call it with a :class:`Chunk`. Made before the
    listing is written, so that workers load the model while the folder is listed."""

    predictor: Predictor
    folder: str
    listing: str
    top_k: int = 1
    invert: str | bool = "auto"
    batch: int = DEFAULT_BATCH

    def paths(self, chunk: Chunk) -> list[str]:
        """The listing's lines of ``chunk``."""
        with open(self.listing, "rb") as lines:
            lines.seek(chunk.offset)
            return [lines.readline().decode("utf-8").rstrip("\n") for _ in range(chunk.size)]

    def __call__(self, chunk: Chunk) -> dict[str, Any]:
        """The chunk's rows (path, top-k labels and probabilities) in listing order, and its unreadable images
        with the reason: plain lists, for a JSON part file."""
        rows: list[list[Any]] = []
        errors: list[list[str]] = []
        paths = self.paths(chunk)
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
        return {"chunk": chunk.index, "rows": rows, "errors": errors}


def _reason(exc: ImageError, full: Path) -> str:
    """The error without the file name it starts with (the errors file has a column for it)."""
    text = str(exc)
    return text[len(f"{full}: "):] if text.startswith(f"{full}: ") else text
