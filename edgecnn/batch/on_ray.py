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


def run_on_ray(scorer: ChunkScorer, pending: Sequence[Chunk], workers: int, address: str | None,
               on_result: Callable[[dict[str, Any]], None]) -> str:
    """Score the ``pending`` chunks on ``workers`` Ray actors of the cluster at ``address`` (None: a local one
    started here, and stopped after); each result to ``on_result``. Returns where it ran."""
    verbose = is_verbose()
    ray = require_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=verbose,
                 logging_level=logging.INFO if verbose else logging.ERROR,
                 **({} if address else {"num_cpus": workers}))
    if not verbose:  # Ray's own log lines (the executor's INFO, its progress-bar notice) only with --verbose
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
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
            scored = dataset.map_batches(RayChunks, fn_constructor_kwargs={"scorer": scorer}, batch_size=1,
                                         compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
                                         max_restarts=0)
        with warnings.catch_warnings():
            if not verbose:  # e.g. fewer chunks than actors: nothing the user has to act on
                warnings.simplefilter("ignore", UserWarning)
            for row in scored.iter_rows():
                on_result(json.loads(row["result"]))
        return f"Ray cluster at {address}" if address else f"a local Ray cluster ({workers} CPUs)"
    finally:
        if started:
            ray.shutdown()

