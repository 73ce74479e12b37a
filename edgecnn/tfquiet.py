"""Lazy TensorFlow import with its log noise hidden.

TensorFlow and its converters write oneDNN, MLIR and absl lines straight to the
process's file descriptors, where ``TF_CPP_MIN_LOG_LEVEL`` does not reach them
all. :func:`quiet` therefore captures the descriptors themselves and replays
what was captured only when the wrapped block fails, so a real error is never
hidden. ``--verbose`` (``set_verbose(True)``) turns the capture off.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator

from .errors import require

_verbose = False


def set_verbose(flag: bool) -> None:
    global _verbose
    _verbose = bool(flag)
    if not flag:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


def is_verbose() -> bool:
    return _verbose


@contextlib.contextmanager
def quiet(stdout: bool = False) -> Iterator[None]:
    """Capture fd 2 (and fd 1 when ``stdout``) for the block, unless verbose."""
    if _verbose:
        yield
        return
    fds = [2] + ([1] if stdout else [])
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    with tempfile.TemporaryFile() as sink:
        saved = {fd: os.dup(fd) for fd in fds}
        for fd in fds:
            os.dup2(sink.fileno(), fd)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            if failed:
                sink.seek(0)
                tail = sink.read()[-4000:].decode("utf-8", "replace")
                if tail.strip():
                    sys.stderr.write(tail if tail.endswith("\n") else tail + "\n")


def tensorflow():
    """Import TensorFlow quietly, or fail with a line naming the ``train`` extra."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    set_verbose(_verbose)
    with quiet():
        tf = require("tensorflow", feature="this command (Keras model)")
        tf.get_logger().setLevel("ERROR")
        with contextlib.suppress(ImportError):
            import absl.logging

            absl.logging.set_verbosity(absl.logging.ERROR)
    return tf


def keras():
    """Import Keras (after TensorFlow, so the TensorFlow backend and its quieting apply)."""
    tensorflow()
    import keras as keras_module

    return keras_module
