"""Benchmark results as a text table, CSV and a chart (written atomically)."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import EdgecnnError, require
from ..fileio import atomic_path, ensure_writable_dir, write_text

LATENCY_KEYS = ("p50", "p90", "p99", "mean", "std")
#: Flat CSV columns, in order (latency_s is spread over one column per statistic).
CSV_COLUMNS = ("source", "cpu", "cores", "name", "file", "backend", "precision", "mode", "batch_size", "threads", "load_s",
               "first_inference_s", *(f"latency_{k}_s" for k in LATENCY_KEYS), "images_per_s", "peak_rss_mb",
               "file_bytes", "params", "macs", "arena_bytes", "accuracy", "runs", "warmup")


def check_outputs(paths: list[Path], *, plot: bool) -> None:
    """Fail before minutes of benchmarking, not after: folders writable, no folder in a file's place."""
    for path in paths:
        if path.is_dir():
            raise EdgecnnError(f"output {path} is a folder, expected a file name")
        ensure_writable_dir(path.parent)
    if plot:
        require("matplotlib", feature="--plot")


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.2f} s"


def _count(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.2f} {suffix}{unit}".rstrip()
    return f"{value:.0f} {unit}".rstrip()


def table_rows(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells; a "source" column first when the rows come from several files."""
    sourced = any(row.get("source") for row in rows)
    head = (["machine"] if sourced else []) + [
        "model", "mode", "batch", "thr", "runs", "p50", "p90", "p99", "images/s", "load", "first", "RSS MB",
        "size", "params", "MACs", "arena", "acc"]
    body = []
    for row in rows:
        lat = row.get("latency_s") or {}
        acc = row.get("accuracy")
        rss = row.get("peak_rss_mb")
        body.append(([str(row.get("source", ""))] if sourced else []) + [
            str(row["name"]), str(row["mode"]), str(row["batch_size"]), str(row["threads"]), str(row.get("runs", "-")),
            seconds(lat.get("p50")), seconds(lat.get("p90")), seconds(lat.get("p99")),
            _count(row.get("images_per_s")), seconds(row.get("load_s")), seconds(row.get("first_inference_s")),
            "-" if rss is None else f"{rss:.0f}", _count(row.get("file_bytes"), "B"), _count(row.get("params")),
            _count(row.get("macs")), _count(row.get("arena_bytes"), "B"), "-" if acc is None else f"{acc:.4f}",
        ])
    return head, body


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table, columns aligned (numbers right, names left)."""
    head, body = table_rows(rows)
    widths = [max(len(cell) for cell in column) for column in zip(head, *body)]
    left = {"machine", "model", "mode"}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if h in left else c.rjust(w) for c, w, h in zip(cells, widths, head)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in body)])


def format_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The same table in Markdown (for bench/RESULTS.md)."""
    head, body = table_rows(rows)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


def flat_row(row: dict[str, Any], machine: dict[str, Any]) -> dict[str, Any]:
    lat = row.get("latency_s") or {}
    flat = {key: row.get(key) for key in CSV_COLUMNS}
    flat.update({f"latency_{k}_s": lat.get(k) for k in LATENCY_KEYS}, cpu=machine.get("cpu"), cores=machine.get("cores"))
    return flat


def write_csv(path: str | os.PathLike, rows: Sequence[dict[str, Any]],
              machine_of: Callable[[dict[str, Any]], dict[str, Any]]) -> Path:
    """One row per case, latency flattened, each row naming the machine it was measured on."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat_row(row, machine_of(row) or {}) for row in rows)
    return write_text(path, buffer.getvalue())


def write_plot(path: str | os.PathLike, rows: Sequence[dict[str, Any]], title: str = "edgecnn bench") -> Path:
    """Two panels: p50 latency at the smallest batch and images/s at the largest, log scale, one bar
    per model and mode, one colour per series (thread count, and machine when comparing)."""
    matplotlib = require("matplotlib", feature="--plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    small = min(row["batch_size"] for row in rows)
    large = max(row["batch_size"] for row in rows)
    labels = list(dict.fromkeys(f"{row['name']} · {row['mode']}" for row in rows))
    series = list(dict.fromkeys(_series(row) for row in rows))
    height = max(3.0, 0.32 * len(labels) * max(1, len(series)) ** 0.5 + 1.2)
    fig, axes = plt.subplots(1, 2, figsize=(13, height), sharey=True)
    bar = 0.8 / len(series)
    for ax, batch, key, xlabel in ((axes[0], small, "p50", f"p50 latency per batch of {small} (s, log)"),
                                   (axes[1], large, "images_per_s", f"images/s at batch {large} (log)")):
        for k, name in enumerate(series):
            ys, values = [], []
            for row in rows:
                if row["batch_size"] == batch and _series(row) == name:
                    value = row["latency_s"]["p50"] if key == "p50" else row["images_per_s"]
                    if value:
                        ys.append(labels.index(f"{row['name']} · {row['mode']}") + k * bar - 0.4 + bar / 2)
                        values.append(value)
            ax.barh(ys, values, height=bar, label=name)
            for y, value in zip(ys, values):
                text = seconds(value) if key == "p50" else _count(value)
                ax.annotate(text, (value, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        ax.set_xscale("log")
        ax.margins(x=0.15)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3, which="both")
    axes[0].set_yticks(range(len(labels)), [label.replace("$", r"\$") for label in labels])
    axes[0].invert_yaxis()
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return Path(path)


def _series(row: dict[str, Any]) -> str:
    threads = f"{row['threads']} thread" + ("s" if row["threads"] != 1 else "")
    return f"{row['source']}, {threads}" if row.get("source") else threads
