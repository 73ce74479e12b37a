"""manifest.json: read with its schema checked, changed under a lock, written atomically.

A bundle is what a user ships: the Keras model, its exports and a manifest that
says what each file is (format, precision, tensors, sha256, provenance).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from ..errors import EdgecnnError
from ..fileio import read_json, write_json
from .files import MANIFEST_FILE, MANIFEST_LOCK_FILE

MANIFEST_SCHEMA = 1


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


def update_manifest(folder: str | os.PathLike, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read-modify-write the manifest under a lock, written atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / MANIFEST_LOCK_FILE):
        manifest = load_manifest_or_empty(folder)
        manifest.setdefault("schema", MANIFEST_SCHEMA)
        manifest.setdefault("exports", {})
        change(manifest)
        write_json(folder / MANIFEST_FILE, manifest)
    return manifest
