"""User-facing errors: one line, a file name where there is one, and an exit code.

The CLI prints ``str(error)`` and exits with ``error.exit_code``; anything that is
not an :class:`EdgecnnError` is a bug and is reported as such.
"""
from __future__ import annotations

#: Exit codes shared by every command.
EXIT_OK = 0
EXIT_FAILED = 1  # the work ran but a gate failed or some inputs were rejected
EXIT_BAD_INPUT = 2  # the request itself could not be carried out


class EdgecnnError(Exception):
    """An error the user can fix: bad input, missing file, missing extra."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class DataError(EdgecnnError):
    """The dataset is missing, truncated or not in the expected format."""


class ModelFileError(EdgecnnError):
    """A model file is missing, corrupt, of an unknown type or unsafe to load."""


class MissingExtraError(EdgecnnError):
    """A feature needs an optional dependency that is not installed."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__


def require(module: str, extra: str = "train", feature: str = "this command"):
    """Import ``module`` or raise a one-line error naming the pip extra that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{feature} needs {module.split('.')[0]}, which is not installed "
            f"({exc.__class__.__name__}: {exc}); install it with: pip install 'edgecnn[{extra}]'"
        ) from exc
