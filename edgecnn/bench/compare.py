"""Merge bench results from several machines (a laptop, a board, a phone) into one table and one chart."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..bundle.schema import BENCH_WHAT, BenchFile, parse
from ..errors import EdgecnnError
from ..fileio import read_json, write_json
from ..versions import utc_now
from .output import check_outputs, format_table, write_csv, write_plot

COMPARE_PLOT = "bench-compare.png"


@dataclass
class Comparison:
    sources: list[dict[str, Any]]
    results: list[dict[str, Any]]
    written: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"created": utc_now(), "sources": self.sources, "results": self.results}

    def table(self) -> str:
        return format_table(self.results)


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """A bench.json file, checked against its schema so it can be merged (one-line errors naming the file)."""
    data = read_json(path, what=BENCH_WHAT)
    if not parse(BenchFile, data, path, BENCH_WHAT).results:
        raise EdgecnnError(f"{BENCH_WHAT} {path} holds no results")
    return data


def compare(files: Sequence[str | os.PathLike], *, json_path: str | os.PathLike | None = None,
            csv_path: str | os.PathLike | None = None, plot_path: str | os.PathLike | None = COMPARE_PLOT) -> Comparison:
    """Merge bench.json files from several machines into one table (rows tagged by source) and one chart."""
    paths = [Path(f) for f in files]
    if len(paths) < 2:
        raise EdgecnnError(f"--compare needs at least two bench result files, got {len(paths)}")
    loaded = [load_results(p) for p in paths]
    labels = _source_labels(paths)
    outputs = [Path(p) for p in (json_path, csv_path, plot_path) if p is not None]
    check_outputs(outputs, plot=plot_path is not None)
    sources = [{"label": label, "file": str(path), "machine": data.get("machine"), "created": data.get("created"),
                "config": data.get("config")} for label, path, data in zip(labels, paths, loaded)]
    rows = [{"source": label, **row} for label, data in zip(labels, loaded) for row in data["results"]]
    result = Comparison(sources, rows)
    if json_path is not None:
        result.written.append(write_json(json_path, result.to_dict()))
    if csv_path is not None:
        machines = {source["label"]: source["machine"] for source in sources}
        result.written.append(write_csv(csv_path, rows, lambda row: machines[row["source"]]))
    if plot_path is not None:
        result.written.append(write_plot(plot_path, rows, title="edgecnn bench: machines compared"))
    return result


def _source_labels(paths: list[Path]) -> list[str]:
    """Short distinct names: the file stems, else parent/stem, else the full paths."""
    for labels in ([p.stem for p in paths], [f"{p.parent.name}/{p.stem}" for p in paths], [str(p) for p in paths]):
        if len(set(labels)) == len(labels):
            return labels
    return [f"{i + 1}:{p}" for i, p in enumerate(paths)]
