"""Batch scoring of image folders of any size: resumable, on worker processes or a Ray cluster.

:func:`score_folder` lists the folder once, scores it chunk by chunk
(:mod:`.scorer`, one code path for :mod:`.local` processes and :mod:`.on_ray`
actors), keeps each finished chunk beside the output (:mod:`.job`) and writes
the output in one of :data:`.writers.WRITERS`' formats when every chunk is done.
"""
from .run import DEFAULT_CHUNK, BatchReport, errors_file, score_folder
from .writers import WRITERS

__all__ = ["DEFAULT_CHUNK", "WRITERS", "BatchReport", "errors_file", "score_folder"]
