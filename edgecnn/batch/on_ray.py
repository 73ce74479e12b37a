"""Chunks on a Ray cluster through Ray Data: ``map_batches`` with a callable class, one model load per actor.

The dataset's rows are chunks (index, offset, size); each actor scores its chunks with the
same :class:`~.scorer.ChunkScorer` as a local worker (the folder and the listing
must be on storage every node sees), and the driver writes the parts, so a run
on Ray resumes like a local one and gives the same rows.
"""
from __future__ import annotations

import json
import logging
import warnings
from types import TracebackType
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import require
from ..tfquiet import is_verbose
from .scorer import Chunk, ChunkScorer


class RayChunks:
    """The callable class of ``map_batches``: built once per actor, with the scorer's Predictor loaded again."""

    def __init__(self, scorer: ChunkScorer) -> None:
        self.scorer = scorer

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [json.dumps(self.scorer(Chunk(int(k), int(offset), int(size))))
                   for k, offset, size in zip(batch["chunk"], batch["offset"], batch["size"])]
        return {"result": np.array(results, dtype=object)}


def require_ray() -> Any:
    """The ray module with Ray Data, or a one-line error naming the extra."""
    ray = require("ray", extra="ray", feature="--ray")
    require("ray.data", extra="ray", feature="--ray")
    return ray


class RayRunner:
    """``workers`` Ray actors of the cluster at ``address`` (None: a local one, started on entering and stopped on
    leaving); :meth:`run` scores chunks on them, as :class:`~.local.LocalRunner` does on processes."""

    def __init__(self, scorer: ChunkScorer, workers: int, address: str | None) -> None:
        self.scorer, self.workers, self.address = scorer, workers, address
        self.where = f"Ray cluster at {address}" if address else f"a local Ray cluster ({workers} CPUs)"
        self._verbose = is_verbose()
        self._ray = require_ray()
        self._started = False

    def __enter__(self) -> "RayRunner":
        ray, verbose = self._ray, self._verbose
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=verbose,
                     logging_level=logging.INFO if verbose else logging.ERROR,
                     **({} if self.address else {"num_cpus": self.workers}))
            self._started = True
        if not verbose:  # Ray's own log lines (the executor's INFO, its progress-bar notice) only with --verbose
            for name in ("ray", "ray.data"):
                logging.getLogger(name).setLevel(logging.ERROR)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._started:
            self._ray.shutdown()

    def run(self, pending: Sequence[Chunk], on_result: Callable[[dict[str, Any]], None]) -> None:
        """Score the ``pending`` chunks, each result to ``on_result`` as it comes (in any order)."""
        ray = self._ray
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.execution_options.preserve_order = False
        dataset = ray.data.from_items([{"chunk": c.index, "offset": c.offset, "size": c.size} for c in pending],
                                      override_num_blocks=max(1, len(pending)))
        with warnings.catch_warnings():
            # max_restarts: an actor lost with its node is not restarted (its constructor arguments may be lost
            # with it, ray #53727): the run stops, and run again it continues from its parts. Ray 2.60 deprecates
            # passing it so (removal in 2.64, hence the extra's bound) but has no other way.
            warnings.simplefilter("ignore", DeprecationWarning)
            scored = dataset.map_batches(RayChunks, fn_constructor_kwargs={"scorer": self.scorer}, batch_size=1,
                                         compute=ray.data.ActorPoolStrategy(size=self.workers), num_cpus=1,
                                         max_restarts=0)
        with warnings.catch_warnings():
            if not self._verbose:  # e.g. fewer chunks than actors: nothing the user has to act on
                warnings.simplefilter("ignore", UserWarning)
            for row in scored.iter_rows():
                on_result(json.loads(row["result"]))
