"""The state of a batch run beside its output, so a killed run continues where it stopped.

``OUT.partial/`` holds the listing of the folder (written once), ``job.json``
(what the run is: folder, model and its sha256, top-k, chunk size; the chunks'
byte offsets in the listing) and one part file per finished chunk, each
written atomically. A chunk is done exactly when its part exists, so a kill at
any point loses at most the chunks in flight, and none is written twice. The
output itself is written only when every chunk is done, from the parts in
listing order (atomically: never torn), then the state is removed.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import EdgecnnError
from ..fileio import read_json, write_json, write_text
from .listing import write_listing
from .scorer import Chunk

STATE_SUFFIX = ".partial"
JOB_FILE = "job.json"
LISTING_FILE = "listing.txt"
PARTS = "parts"


@dataclass(frozen=True)
class JobSpec:
    """What makes two runs the same run: a resumed one must match it exactly."""

    folder: str  # resolved
    model: str  # resolved
    model_sha256: str
    top_k: int
    chunk_size: int
    invert: str | bool


def state_folder(out: Path) -> Path:
    return out.with_name(out.name + STATE_SUFFIX)


@dataclass
class Job:
    spec: JobSpec
    state: Path
    count: int  # images listed
    offsets: list[int]  # byte offset of each chunk's first line in the listing
    todo: int = field(init=False)  # images in the chunks without a part when the job was opened

    def __post_init__(self) -> None:
        self.todo = sum(chunk.size for chunk in self.pending())

    def part(self, k: int) -> Path:
        return self.state / PARTS / f"{k:07d}.json"

    def pending(self) -> list[Chunk]:
        """The chunks without a part, in listing order."""
        return [Chunk(k, offset, min(self.spec.chunk_size, self.count - k * self.spec.chunk_size))
                for k, offset in enumerate(self.offsets) if not self.part(k).is_file()]

    def save(self, result: dict[str, Any]) -> None:
        write_text(self.part(result["chunk"]), json.dumps(result, separators=(",", ":")))

    def results(self) -> Iterator[dict[str, Any]]:
        """Every chunk's result, in listing order."""
        for k in range(len(self.offsets)):
            yield json.loads(self.part(k).read_text(encoding="utf-8"))

    def remove(self) -> None:
        shutil.rmtree(self.state, ignore_errors=True)


def unfinished_job(out: Path, spec: JobSpec) -> Job | None:
    """The unfinished run of ``out`` (it must be this run: a one-line error otherwise), or None when there is none
    and a new one may start (``out`` does not exist)."""
    state = state_folder(out)
    job_file = state / JOB_FILE
    if job_file.is_file():
        recorded = read_json(job_file)
        was = recorded.get("spec", {})
        differs = [key for key, value in asdict(spec).items() if was.get(key) != value]
        if differs:
            key = differs[0]
            raise EdgecnnError(f"{out} has an unfinished run with another {key.replace('_', ' ')} "
                               f"({was.get(key)!r}, not {getattr(spec, key)!r}): run it again "
                               f"as it was to finish it, or remove {state} to start over")
        return Job(spec, state, int(recorded["count"]), [int(o) for o in recorded["offsets"]])
    if out.exists():
        raise EdgecnnError(f"{out} exists and no unfinished run of it does: remove it, or choose another --out")
    return None


def new_job(out: Path, spec: JobSpec) -> Job:
    """A new run of ``out``: the folder listed, the chunks' offsets recorded."""
    state = state_folder(out)
    (state / PARTS).mkdir(parents=True, exist_ok=True)
    count, sha256 = write_listing(Path(spec.folder), state / LISTING_FILE)
    offsets = _chunk_offsets(state / LISTING_FILE, spec.chunk_size)
    write_json(state / JOB_FILE, {"spec": asdict(spec), "count": count, "listing_sha256": sha256,
                                  "offsets": offsets})
    return Job(spec, state, count, offsets)


def _chunk_offsets(listing: Path, size: int) -> list[int]:
    """Byte offset of every ``size``-th line."""
    offsets, position = [], 0
    with open(listing, "rb") as lines:
        for number, line in enumerate(lines):
            if number % size == 0:
                offsets.append(position)
            position += len(line)
    return offsets
