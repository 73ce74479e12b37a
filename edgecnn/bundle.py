"""The bundle folder: its fixed file names, the default location and manifest.json.

A bundle is what a user ships: the Keras model, its exports and a manifest that
says what each file is (format, precision, tensors, sha256, provenance).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import EdgecnnError
from .fileio import read_json, write_json

MODEL_FILE = "model.keras"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
REFERENCE_PROBS_FILE = "reference_probs.npy"
REFERENCE_LABELS_FILE = "reference_labels.npy"
REPORT_FILE = "report.html"
VERIFY_FILE = "verify.json"
DEFAULT_RELATIVE = Path("models") / "fashion-cnn"
MANIFEST_SCHEMA = 1


def default_bundle() -> Path:
    """``models/fashion-cnn`` in the current folder, else the one shipped beside the package."""
    local = Path.cwd() / DEFAULT_RELATIVE
    if local.exists():
        return DEFAULT_RELATIVE
    shipped = Path(__file__).resolve().parent.parent / DEFAULT_RELATIVE
    return shipped if shipped.exists() else DEFAULT_RELATIVE


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """Read and check the manifest of a bundle; one-line errors on every defect."""
    path = Path(folder) / MANIFEST_FILE
    manifest = read_json(path, what="manifest")
    if not isinstance(manifest, dict):
        raise EdgecnnError(f"manifest {path} must be a JSON object, got {type(manifest).__name__}")
    exports = manifest.get("exports", {})
    if not isinstance(exports, dict):
        raise EdgecnnError(f"manifest {path}: 'exports' must be an object, got {type(exports).__name__}")
    for key, entry in exports.items():
        if not isinstance(entry, dict):
            raise EdgecnnError(f"manifest {path}: export '{key}' must be an object")
        for field, kind in (("file", str), ("sha256", str), ("format", str), ("precision", str)):
            if field not in entry:
                raise EdgecnnError(f"manifest {path}: export '{key}' lacks field '{field}' ({kind.__name__})")
            if not isinstance(entry[field], kind):
                raise EdgecnnError(f"manifest {path}: export '{key}' field '{field}' must be a {kind.__name__}, "
                                   f"got {type(entry[field]).__name__}")
        if entry["file"] in ("", ".", "..") or Path(entry["file"]).name != entry["file"]:
            raise EdgecnnError(f"manifest {path}: export '{key}' file '{entry['file']}' must be a file name "
                               "inside the bundle folder")
    names = manifest.get("class_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise EdgecnnError(f"manifest {path}: 'class_names' must be a list of strings")
    return manifest


def load_manifest_or_empty(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / MANIFEST_FILE
    return read_manifest(folder) if path.exists() else {"schema": MANIFEST_SCHEMA, "exports": {}}


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    lock = folder / ".manifest.lock"
    with open(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_manifest(folder: str | os.PathLike, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read-modify-write the manifest under a lock, written atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        manifest = load_manifest_or_empty(folder)
        manifest.setdefault("schema", MANIFEST_SCHEMA)
        manifest.setdefault("exports", {})
        change(manifest)
        write_json(folder / MANIFEST_FILE, manifest)
    return manifest
