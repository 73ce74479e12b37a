"""Progress of long measurements, as one callback type that the library calls and the CLI draws.

Below export and quantize both: an export passes it down to the per-layer measurements.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence, TypeVar

#: ``on_progress(what, done, total)`` of the per-layer measurements: ``done`` of ``total`` layers, from 0 to
#: ``total`` for each ``what``. A real network (EfficientNetB0: about 80 layers, seconds each) takes minutes.
Progress = Callable[[str, int, int], None]
T = TypeVar("T")


def counted(items: Sequence[T], what: str, on_progress: Progress | None) -> Iterator[T]:
    """``items`` one by one, telling ``on_progress`` 0 first and then each one done (nothing when empty)."""
    if on_progress is None or not items:
        yield from items
        return
    on_progress(what, 0, len(items))
    for done, item in enumerate(items, 1):
        yield item
        on_progress(what, done, len(items))
