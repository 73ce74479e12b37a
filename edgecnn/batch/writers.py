"""The output formats of a batch run, each writing rows to one file: ``--out`` picks one by its suffix.

A row is the image's path (relative to the scored folder), its top-k labels and
probabilities, and the model's sha256. CSV and Parquet have a column per rank
(``label_1``, ``probability_1``, ...); JSON lines a ``top_k`` list. Floats are
written exactly (the shortest text that reads back as the same value).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from ..errors import EdgecnnError, require

Row = list  # [path, labels, probabilities]


class RowWriter(Protocol):
    def write(self, rows: Iterable[Row]) -> None: ...

    def close(self) -> None: ...


def rank_columns(top_k: int) -> list[str]:
    return [name for i in range(1, top_k + 1) for name in (f"label_{i}", f"probability_{i}")]


class CsvWriter:
    def __init__(self, path: Path, top_k: int, sha256: str) -> None:
        self._file = open(path, "w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["path", *rank_columns(top_k), "model_sha256"])
        self._sha256 = sha256

    def write(self, rows: Iterable[Row]) -> None:
        self._csv.writerows([path, *(v for pair in zip(labels, probs) for v in (pair[0], repr(pair[1]))),
                             self._sha256] for path, labels, probs in rows)

    def close(self) -> None:
        self._file.close()


class JsonlWriter:
    def __init__(self, path: Path, top_k: int, sha256: str) -> None:
        self._file = open(path, "w", encoding="utf-8", newline="\n")
        self._sha256 = sha256

    def write(self, rows: Iterable[Row]) -> None:
        self._file.writelines(json.dumps({"path": path, "top_k": [{"label": label, "probability": p}
                                                                   for label, p in zip(labels, probs)],
                                          "model_sha256": self._sha256}) + "\n" for path, labels, probs in rows)

    def close(self) -> None:
        self._file.close()


class ParquetWriter:
    """One row group per write (a chunk of the run), so memory holds one chunk."""

    def __init__(self, path: Path, top_k: int, sha256: str) -> None:
        pa = require("pyarrow", extra="parquet", feature="--out *.parquet")
        import pyarrow.parquet as pq

        self._pa, self._top_k, self._sha256 = pa, top_k, sha256
        fields = [pa.field("path", pa.string())]
        for i in range(1, top_k + 1):
            fields += [pa.field(f"label_{i}", pa.string()), pa.field(f"probability_{i}", pa.float64())]
        self._schema = pa.schema([*fields, pa.field("model_sha256", pa.string())])
        self._writer = pq.ParquetWriter(str(path), self._schema)

    def write(self, rows: Iterable[Row]) -> None:
        rows = list(rows)
        columns: dict[str, list[Any]] = {"path": [row[0] for row in rows]}
        for i in range(self._top_k):
            columns[f"label_{i + 1}"] = [row[1][i] if i < len(row[1]) else None for row in rows]
            columns[f"probability_{i + 1}"] = [row[2][i] if i < len(row[2]) else None for row in rows]
        columns["model_sha256"] = [self._sha256] * len(rows)
        self._writer.write_table(self._pa.Table.from_pydict(columns, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


#: ``--out`` suffix -> its writer.
WRITERS: dict[str, Callable[[Path, int, str], RowWriter]] = {
    ".csv": CsvWriter, ".jsonl": JsonlWriter, ".parquet": ParquetWriter,
}


def writer_for(out: Path) -> Callable[[Path, int, str], RowWriter]:
    """The writer of ``out``'s suffix; a one-line error for another, and for Parquet without pyarrow, before any
    work is done."""
    suffix = out.suffix.lower()
    if suffix not in WRITERS:
        raise EdgecnnError(f"--out {out}: unknown output type '{suffix or '(no extension)'}' "
                           f"(expected one of {', '.join(WRITERS)})")
    if suffix == ".parquet":
        require("pyarrow", extra="parquet", feature="--out *.parquet")
    return WRITERS[suffix]
