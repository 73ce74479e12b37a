"""The images of a folder tree, in one fixed order, written once so that a resumed run sees the same chunks.

The walk is sorted folder by folder, so memory holds one folder's names at a
time, never the whole tree; the listing file then serves every later read.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterator

from ..fileio import atomic_path
from ..preprocess import IMAGE_SUFFIXES, ImageError


def walk_images(folder: Path) -> Iterator[str]:
    """Image files under ``folder`` (recursive, hidden names skipped, symlinked folders not followed), as paths
    relative to it with ``/``, sorted within each folder and folders depth first."""
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(top).relative_to(folder)
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield (rel / name).as_posix()


def write_listing(folder: Path, target: Path) -> tuple[int, str]:
    """Write the walk of ``folder`` to ``target``, one path a line, atomically; its count and sha256."""
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a folder of images")
    digest, count = hashlib.sha256(), 0
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as out:
        for path in walk_images(folder):
            if "\n" in path or "\t" in path:
                raise ImageError(f"{folder / path}: a file name with a newline or tab cannot be listed")
            line = path + "\n"
            out.write(line)
            digest.update(line.encode("utf-8"))
            count += 1
        if not count:
            raise ImageError(f"{folder}: no image files in it or below ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return count, digest.hexdigest()


def read_chunks(listing: Path, size: int) -> Iterator[tuple[int, list[str]]]:
    """(index, paths) of each run of ``size`` lines of the listing, in order."""
    chunk: list[str] = []
    index = 0
    with open(listing, encoding="utf-8", newline="\n") as lines:
        for line in lines:
            chunk.append(line.rstrip("\n"))
            if len(chunk) == size:
                yield index, chunk
                index, chunk = index + 1, []
    if chunk:
        yield index, chunk
