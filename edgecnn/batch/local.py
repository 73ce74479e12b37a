"""Chunks on worker processes of this machine, each loading the model once.

Processes are spawned, not forked: a fork would copy the parent's runtime
sessions and their thread pools mid-flight. The parent writes every part, so a
worker killed with the run leaves nothing half-written.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from types import TracebackType
from typing import Any, Callable, Sequence

from .scorer import Chunk, ChunkScorer

#: Chunks queued per worker beyond the one it runs, so no worker waits for the parent.
QUEUED_PER_WORKER = 1

_scorer: ChunkScorer | None = None


def _start(scorer: ChunkScorer) -> None:
    global _scorer
    _scorer = scorer  # unpickled here: its Predictor loads once, in this process


def _score(chunk: Chunk) -> dict[str, Any]:
    assert _scorer is not None
    return _scorer(chunk)


class LocalRunner:
    """``workers`` processes (1: this one), started on entering, so that they import the runtime and load the
    model while the parent lists the folder; :meth:`run` scores chunks on them."""

    where = "this machine"

    def __init__(self, scorer: ChunkScorer, workers: int) -> None:
        self.scorer, self.workers = scorer, workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "LocalRunner":
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start, initargs=(self.scorer,))
            for _ in range(self.workers):  # start them all now (the pool would start one per task submitted)
                self._pool.submit(int)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def run(self, pending: Sequence[Chunk], on_result: Callable[[dict[str, Any]], None]) -> None:
        """Score the ``pending`` chunks, each result to ``on_result`` as it comes (in any order)."""
        if self._pool is None:
            for chunk in pending:
                on_result(self.scorer(chunk))
            return
        todo = iter(pending)
        running: set[Future] = set()

        def fill() -> None:
            while len(running) < self.workers * (1 + QUEUED_PER_WORKER):
                chunk = next(todo, None)
                if chunk is None:
                    return
                running.add(self._pool.submit(_score, chunk))

        fill()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                running.discard(future)
                on_result(future.result())
            fill()
