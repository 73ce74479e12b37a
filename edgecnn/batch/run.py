"""``edgecnn predict DIR --out FILE``: score a folder tree of any size, resumably, locally or on Ray."""
from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import EXIT_FAILED, EdgecnnError
from ..fileio import atomic_path, sha256_file
from ..runtime import Predictor
from .job import LISTING_FILE, Job, JobSpec, new_job, state_folder, unfinished_job
from .scorer import DEFAULT_BATCH, ChunkScorer
from .writers import RowWriter, writer_for

if TYPE_CHECKING:
    from .on_ray import RayRunner

#: Images per chunk: the unit a resumed run skips or redoes, one part file each.
DEFAULT_CHUNK = 1024
#: (images done, images to do this run) after each chunk.
BatchProgress = Callable[[int, int], None]


@dataclass
class BatchReport:
    out: Path
    errors_file: Path
    model: Path
    model_sha256: str
    images: int  # listed
    predicted: int
    failed: int
    done_before: int  # images a killed run had finished
    seconds: float  # this run's scoring
    workers: int
    where: str

    @property
    def images_per_s(self) -> float:
        scored = self.images - self.done_before
        return scored / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        resumed = f", continuing a run that had scored {self.done_before:,}" if self.done_before else ""
        return [f"{self.predicted:,} of {self.images:,} images predicted, {self.failed:,} unreadable "
                f"(-> {self.errors_file}){resumed}",
                f"{self.images_per_s:,.0f} images/s on {self.where}, {self.workers} worker(s), "
                f"model {self.model.name} (sha256 {self.model_sha256[:12]})", f"-> {self.out}"]


def errors_file(out: Path) -> Path:
    """The unreadable images' file beside the output: ``predictions.csv`` -> ``predictions.errors.tsv``."""
    return out.with_name(out.stem + ".errors.tsv")


def score_folder(folder: str | os.PathLike, out: str | os.PathLike, *, model: str | os.PathLike,
                 top_k: int = 1, workers: int | None = None, threads: int | None = None,
                 batch: int = DEFAULT_BATCH, chunk: int = DEFAULT_CHUNK, invert: str | bool = "auto",
                 ray: str | None = None, on_progress: BatchProgress | None = None) -> BatchReport:
    """Predict every image under ``folder`` into ``out`` (.csv, .jsonl, .parquet), continuing an unfinished run of
    the same ``out``. ``workers`` processes (default: the cores), each with ``threads`` runtime threads (default:
    the cores shared out); ``ray``: a Ray cluster's address, "" for a local one started here."""
    folder, out = Path(folder), Path(out)
    writer = writer_for(out)
    if ray is not None:  # a missing extra is refused before anything is loaded, listed or written
        from .on_ray import require_ray

        require_ray()
    if not folder.is_dir():
        raise EdgecnnError(f"{folder}: not a folder (--out scores a folder of images)")
    cores = os.cpu_count() or 1
    workers = workers or cores
    predictor = Predictor.load(model, threads=threads or max(1, cores // workers))
    if top_k > len(predictor.classes):
        raise EdgecnnError(f"--top-k {top_k}: {predictor.path} has only {len(predictor.classes)} classes")
    spec = JobSpec(str(folder.resolve()), str(Path(model).resolve()), sha256_file(model), top_k, chunk, invert)
    scorer = ChunkScorer(predictor, spec.folder, str(state_folder(out) / LISTING_FILE), top_k, invert, batch)
    unfinished = unfinished_job(out, spec)
    if ray is None:
        from .local import LocalRunner

        runner: LocalRunner | RayRunner = LocalRunner(scorer, workers)
    else:
        from .on_ray import RayRunner

        runner = RayRunner(scorer, workers, ray or None)
    with runner:  # local workers load the model while the folder is listed
        job = unfinished or new_job(out, spec)
        save = _keeper(job, on_progress)
        started = time.perf_counter()
        runner.run(job.pending(), save)
    seconds = time.perf_counter() - started
    predicted, failed = _write_outputs(job, out, writer, spec.model_sha256, top_k)
    job.remove()
    return BatchReport(out, errors_file(out), predictor.path, spec.model_sha256, job.count, predicted, failed,
                       job.count - job.todo, seconds, workers, runner.where)


def _keeper(job: Job, on_progress: BatchProgress | None) -> Callable[[dict[str, Any]], None]:
    """The function that keeps each chunk's result as its part, and tells ``on_progress``."""
    done = 0

    def save(result: dict[str, Any]) -> None:
        nonlocal done
        job.save(result)
        done += len(result["rows"]) + len(result["errors"])
        if on_progress is not None:
            on_progress(done, job.todo)

    if on_progress is not None:
        on_progress(0, job.todo)
    return save


def _write_outputs(job: Job, out: Path, writer: Callable[[Path, int, str], RowWriter], sha256: str,
                   top_k: int) -> tuple[int, int]:
    """The errors file, then the output, each atomically from the parts in listing order; (rows, errors). No
    output when no image could be read: an error, exit 1."""
    failed = 0
    with atomic_path(errors_file(out)) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        tsv = csv.writer(handle, delimiter="\t", lineterminator="\n")
        tsv.writerow(["path", "reason"])
        for result in job.results():
            tsv.writerows(result["errors"])
            failed += len(result["errors"])
    if failed == job.count:
        job.remove()
        raise EdgecnnError(f"none of the {job.count:,} images under {job.spec.folder} could be read "
                           f"(see {errors_file(out)}): {out} not written", exit_code=EXIT_FAILED)
    predicted = 0
    with atomic_path(out) as tmp:
        rows = writer(tmp, top_k, sha256)
        try:
            for result in job.results():
                rows.write(result["rows"])
                predicted += len(result["rows"])
        finally:
            rows.close()
    return predicted, failed
