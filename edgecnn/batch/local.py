"""Chunks on worker processes of this machine, each loading the model once.

Processes are spawned, not forked: a fork would copy the parent's runtime
sessions and their thread pools mid-flight. The parent writes every part, so a
worker killed with the run leaves nothing half-written.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Sequence

from .scorer import ChunkScorer

#: Chunks queued per worker beyond the one it runs, so no worker waits for the parent.
QUEUED_PER_WORKER = 1

_scorer: ChunkScorer | None = None


def _start(scorer: ChunkScorer) -> None:
    global _scorer
    _scorer = scorer  # unpickled here: its Predictor loads once, in this process


def _score(k: int) -> dict[str, Any]:
    assert _scorer is not None
    return _scorer(k)


def run_local(scorer: ChunkScorer, pending: Sequence[int], workers: int,
              on_result: Callable[[dict[str, Any]], None]) -> None:
    """Score the ``pending`` chunks on ``workers`` processes (1: in this one), each result to ``on_result`` as it
    comes (in any order)."""
    if workers == 1:
        for k in pending:
            on_result(scorer(k))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=(scorer,)) as pool:
        todo = iter(pending)
        running: set[Future] = set()

        def fill() -> None:
            while len(running) < workers * (1 + QUEUED_PER_WORKER):
                k = next(todo, None)
                if k is None:
                    return
                running.add(pool.submit(_score, k))

        fill()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                running.discard(future)
                on_result(future.result())
            fill()
