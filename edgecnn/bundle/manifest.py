"""manifest.json: read with its schema checked, changed under a lock, written atomically.

A bundle is what a user ships: the Keras model, its exports and a manifest that
says what each file is (format, precision, tensors, sha256, provenance).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from ..fileio import read_json, write_json
from .files import MANIFEST_FILE, MANIFEST_LOCK_FILE
from .schema import MANIFEST_WHAT, SCHEMA_VERSIONS, Manifest, SchemaError, parse

MANIFEST_SCHEMA = SCHEMA_VERSIONS[MANIFEST_WHAT]


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a bundle as a dict (for read-modify-write), checked against its schema."""
    return _read(Path(folder) / MANIFEST_FILE)[0]


def load_manifest(folder: str | os.PathLike) -> Manifest:
    """The manifest of a bundle as a typed :class:`Manifest`, checked against its schema."""
    return _read(Path(folder) / MANIFEST_FILE)[1]


def parse_manifest(data: Any, path: Path) -> Manifest:
    """Check ``data`` (the JSON of ``path``) as a manifest: schema, field types, file names inside the bundle."""
    manifest = parse(Manifest, data, path, MANIFEST_WHAT)
    for key, entry in manifest.exports.items():
        if entry.file in ("", ".", "..") or Path(entry.file).name != entry.file:
            raise SchemaError(f"manifest {path}: field exports.{key}.file '{entry.file}' must be a file name "
                              "inside the bundle folder")
    return manifest


def _read(path: Path) -> tuple[dict[str, Any], Manifest]:
    data = read_json(path, what=MANIFEST_WHAT)
    return data, parse_manifest(data, path)


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
