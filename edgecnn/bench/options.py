"""The benchmark's options: presets, command-line text to numbers, checked ranges."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import EdgecnnError
from .timing import MIN_BUDGET_RUNS

#: The command's defaults, and the pipeline's preset (short, one thread, the two batch sizes users ask about).
#: ``max_seconds`` caps each case's warm-up and timed runs together, ``min_runs`` timed runs kept at the least:
#: a Keras call costs 0.05-0.5 s on a real network, int16x8 at batch 32 as much, and 1,000 of them a case would
#: take most of an hour. The caps keep a plain bench of a real network's bundle near 5 minutes, --quick near 1.
#: --quick leaves out the rows of the bare runtime calls (each Predictor row times them in alternation).
FULL: dict[str, Any] = {"batch_sizes": (1, 32), "threads": (1, None), "runs": 1000, "warmup": 100, "max_seconds": 3,
                        "min_runs": MIN_BUDGET_RUNS, "raw_cases": True}
QUICK: dict[str, Any] = {"batch_sizes": (1, 32), "threads": (1,), "runs": 200, "warmup": 20, "max_seconds": 1,
                         "min_runs": 10, "raw_cases": False}
MAX_BATCH = 4096
MAX_THREADS = 256
MAX_RUNS = 1_000_000
MAX_SECONDS = 86_400


def parse_counts(text: str, option: str, *, high: int, allow_n: bool = False) -> tuple[int | None, ...]:
    """"1,32" -> (1, 32); "N" -> None (all cores) where allowed. One-line error for anything else."""
    values: list[int | None] = []
    for part in str(text).split(","):
        part = part.strip()
        if allow_n and part.upper() == "N":
            values.append(None)
            continue
        try:
            values.append(int(part))
        except ValueError:
            hint = "whole numbers or N, e.g. 1,N" if allow_n else "whole numbers, e.g. 1,32"
            raise EdgecnnError(f"{option}: {part!r} is not a whole number (expected {hint})") from None
    return tuple(dict.fromkeys(_in_range(v, option, 1, high) if v is not None else None for v in values))


def parse_count(text: str | int, option: str, *, low: int, high: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise EdgecnnError(f"{option}: {text!r} is not a whole number") from None
    return _in_range(value, option, low, high)


def parse_options(*, batch_sizes: str | None = None, threads: str | None = None, runs: str | None = None,
                  warmup: str | None = None, max_seconds: str | None = None, quick: bool = False) -> dict[str, Any]:
    """Command-line text -> :func:`bench` keyword arguments; what is not given comes from QUICK or FULL."""
    preset = QUICK if quick else FULL
    return {
        "batch_sizes": parse_counts(batch_sizes, "--batch-sizes", high=MAX_BATCH) if batch_sizes else preset["batch_sizes"],
        "threads": parse_counts(threads, "--threads", high=MAX_THREADS, allow_n=True) if threads else preset["threads"],
        "runs": parse_count(runs, "--runs", low=1, high=MAX_RUNS) if runs else preset["runs"],
        "warmup": parse_count(warmup, "--warmup", low=0, high=MAX_RUNS) if warmup else preset["warmup"],
        "max_seconds": (parse_count(max_seconds, "--max-seconds", low=1, high=MAX_SECONDS) if max_seconds
                        else preset["max_seconds"]),
        "min_runs": preset["min_runs"],
        "raw_cases": preset["raw_cases"],
    }


def _in_range(value: Any, option: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise EdgecnnError(f"{option} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise EdgecnnError(f"{option} must be between {low} and {high:,}, got {value}")
    return int(value)


@dataclass(frozen=True)
class BenchConfig:
    batch_sizes: tuple[int, ...]
    threads: tuple[int, ...]  # None ("N") resolved to os.cpu_count()
    runs: int
    warmup: int
    max_seconds: int | None = None  # time budget of one case's warm-up and timed runs
    min_runs: int = MIN_BUDGET_RUNS  # timed runs the budget keeps at the least
    raw_cases: bool = True  # rows of the bare runtime calls, each in its own case

    @classmethod
    def checked(cls, batch_sizes: Sequence[int], threads: Sequence[int | None], runs: int, warmup: int,
                max_seconds: int | None = None, min_runs: int = MIN_BUDGET_RUNS,
                raw_cases: bool = True) -> "BenchConfig":
        """Validate the options (one-line errors) and resolve "N" threads to this machine's cores."""
        if not batch_sizes or not threads:
            raise EdgecnnError("--batch-sizes and --threads need at least one value each")
        cores = os.cpu_count() or 1
        return cls(
            tuple(dict.fromkeys(_in_range(b, "--batch-sizes", 1, MAX_BATCH) for b in batch_sizes)),
            tuple(dict.fromkeys(cores if t is None else _in_range(t, "--threads", 1, MAX_THREADS) for t in threads)),
            _in_range(runs, "--runs", 1, MAX_RUNS),
            _in_range(warmup, "--warmup", 0, MAX_RUNS),
            None if max_seconds is None else _in_range(max_seconds, "--max-seconds", 1, MAX_SECONDS),
            _in_range(min_runs, "min_runs", 1, MAX_RUNS),
            bool(raw_cases),
        )
