"""Which model files a command works on, and which manifest entry describes each.

A manifest entry belongs to a file by content (its sha256), never by name alone:
a file replaced under the same name must not inherit another model's class
names or gate. Name matching is kept for one purpose: a listed file whose bytes
changed is found, so that verify can fail it as tampered.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import EdgecnnError
from ..fileio import sha256_file
from .files import MANIFEST_FILE, default_bundle
from .manifest import load_manifest
from .schema import ExportRecord, Manifest


@dataclass(frozen=True)
class Target:
    """One model file and, when its folder's manifest lists it, its manifest key and entry."""

    folder: Path
    key: str  # the manifest's format key, else the file name
    path: Path
    entry: ExportRecord | None


def entry_by_content(manifest: Manifest, path: Path, digest: str | None = None) -> tuple[str, ExportRecord] | None:
    """The export entry (key, entry) whose sha256 is the file's own; None when no entry holds these bytes.

    Two entries with the same bytes (a format copied under two names) resolve to the one of the file's own name.
    """
    digest = digest or sha256_file(path)
    matches = [(key, entry) for key, entry in manifest.exports.items() if entry.sha256 == digest]
    return next((m for m in matches if m[1].file == path.name), matches[0] if matches else None)


def _entry_by_name(manifest: Manifest, folder: Path, path: Path) -> tuple[str, ExportRecord] | None:
    return next(((key, entry) for key, entry in manifest.exports.items()
                 if (folder / entry.file).resolve() == path.resolve()), None)


def resolve_targets(targets: Iterable[str | os.PathLike] | None) -> dict[Path, list[Target]]:
    """Bundle folders and model files -> targets grouped by folder (a folder has one reference)."""
    groups: dict[Path, list[Target]] = {}
    for raw in list(targets or []) or [default_bundle()]:
        path = Path(raw)
        if not path.exists():
            raise EdgecnnError(f"{path} not found (expected a bundle folder with {MANIFEST_FILE} "
                               "or an exported model file)")
        folder = path if path.is_dir() else path.parent
        manifest = manifest_of(folder, required=path.is_dir())
        exports = manifest.exports if manifest else {}
        if path.is_dir():
            if not exports:
                raise EdgecnnError(f"{folder / MANIFEST_FILE} lists no exports "
                                   "(run `edgecnn export` first)")
            found = [Target(folder, key, folder / entry.file, entry) for key, entry in exports.items()]
        else:
            match = manifest and (entry_by_content(manifest, path) or _entry_by_name(manifest, folder, path))
            key, entry = match or (path.name, None)
            found = [Target(folder, key, path, entry)]
        group = groups.setdefault(folder, [])
        group += [t for t in found if t.key not in {g.key for g in group}]
    return groups


def manifest_of(folder: Path, *, required: bool) -> Manifest | None:
    """The folder's manifest; None (or, when ``required``, a one-line error) when it has none."""
    if (folder / MANIFEST_FILE).exists():  # a folder in its place is read_manifest's one-line error
        return load_manifest(folder)
    if required:
        raise EdgecnnError(f"{folder} has no {MANIFEST_FILE}: not an exported bundle (run `edgecnn export` first)")
    return None
