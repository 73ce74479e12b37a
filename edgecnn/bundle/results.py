"""A bundle's result files, read once for everything that shows them.

The report, the pipeline's final table and the README's figures all show the
same numbers; they read them here, from metrics.json, manifest.json, verify.json
and bench.json, never from a model runtime. A missing or unreadable file is
recorded as a one-line problem naming the command that makes it, not raised.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import EdgecnnError
from ..fileio import read_json
from .files import (ARCHITECTURE_FILE, BENCH_FILE, HISTORY_FILE, MANIFEST_FILE, METRICS_FILE, MODEL_FILE,
                    REFERENCE_PROBS_FILE, SUMMARY_FILE, TRAINING_FILE, VERIFY_FILE)
from .manifest import load_manifest
from .schema import BENCH_WHAT, VERIFY_WHAT, BenchFile, Manifest, VerifyFile, read_checked

TEST_SET = "test set"
#: Which command makes each file, for the "missing" lines.
MADE_BY = {
    METRICS_FILE: "edgecnn train", HISTORY_FILE: "edgecnn train", SUMMARY_FILE: "edgecnn summary",
    TRAINING_FILE: "edgecnn train", ARCHITECTURE_FILE: "edgecnn summary (needs Graphviz)",
    MODEL_FILE: "edgecnn train", MANIFEST_FILE: "edgecnn export", REFERENCE_PROBS_FILE: "edgecnn export",
    VERIFY_FILE: "edgecnn verify", BENCH_FILE: "edgecnn bench", TEST_SET: "edgecnn report --data-dir DIR",
}


@dataclass
class Bundle:
    """A bundle's result files as read; ``None`` where a file is missing or unreadable (see ``problems``)."""

    folder: Path
    metrics: dict | None = None
    history: dict | None = None
    manifest: Manifest | None = None
    verify: VerifyFile | None = None
    bench: BenchFile | None = None
    summary: str | None = None
    problems: dict[str, str] = field(default_factory=dict)

    def missing(self, name: str) -> str:
        """Why ``name`` is not shown and the command that makes it."""
        why = self.problems.get(name) or f"{name} not found in {self.folder}"
        return f"{why}; run `{MADE_BY.get(name, 'edgecnn pipeline')}` (or `edgecnn pipeline`) to make it"

    @property
    def class_names(self) -> list[str] | None:
        """As recorded (None: a bundle made before names were recorded; the report then shows the default's)."""
        if self.manifest and self.manifest.class_names is not None:
            return list(self.manifest.class_names)
        if self.metrics and isinstance(self.metrics.get("class_names"), list):
            return [str(c) for c in self.metrics["class_names"]]
        return None


def _json_object(path: Path, what: str) -> dict:
    value = read_json(path, what=what)
    if not isinstance(value, dict):
        raise EdgecnnError(f"{what} {path} must be a JSON object, got {type(value).__name__}")
    return value


#: File -> (Bundle attribute, reader).
READERS: dict[str, tuple[str, Callable[[Path], Any]]] = {
    METRICS_FILE: ("metrics", lambda p: _json_object(p, "metrics")),
    HISTORY_FILE: ("history", lambda p: _json_object(p, "history")),
    MANIFEST_FILE: ("manifest", lambda p: load_manifest(p.parent)),
    VERIFY_FILE: ("verify", lambda p: read_checked(VerifyFile, p, VERIFY_WHAT)),
    BENCH_FILE: ("bench", lambda p: read_checked(BenchFile, p, BENCH_WHAT)),
    SUMMARY_FILE: ("summary", lambda p: p.read_text("utf-8")),
}


def load_bundle(folder: str | os.PathLike) -> Bundle:
    """Read every result file of the bundle, recording a one-line problem instead of failing."""
    bundle = Bundle(Path(folder))
    for name, (attribute, reader) in READERS.items():
        path = bundle.folder / name
        if not path.exists():
            continue
        try:
            setattr(bundle, attribute, reader(path))
        except (EdgecnnError, OSError, UnicodeDecodeError) as exc:
            bundle.problems[name] = str(exc)
    return bundle
