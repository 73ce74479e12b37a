"""Helpers shared by the tests: the CLI in a subprocess or in-process, and one way to hide optional packages.

Fixtures live in ``conftest.py``; this module holds plain functions so that test
files, subprocess scripts and ``conftest.py`` can all import them.
"""
from __future__ import annotations

import configparser
import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
import traceback
import warnings
from pathlib import Path
from typing import Iterable

REPO = Path(__file__).resolve().parent.parent

#: The environment pytest started with. Library code run in the test process sets TF_CPP_MIN_LOG_LEVEL and
#: the like in os.environ (edgecnn.tfquiet); a subprocess must not inherit them, or a test that checks that
#: the CLI itself hides TensorFlow's noise would pass for the wrong reason.
ENV_AT_START = dict(os.environ)


# ----------------------------------------------------------------------------- the CLI


def run_cli(*args: str, cwd: Path | str | None = None, env: dict | None = None, timeout: float = 600,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m edgecnn ARGS`` in a fresh process and capture its output as text.

    For what only a real process shows: exit codes of the interpreter, TensorFlow's
    C++ noise on file descriptor 2, missing packages, signals. Everything else:
    :func:`invoke` (in-process, a few ms instead of seconds).
    """
    full_env = {**ENV_AT_START, **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)


#: Python's own warning filters in a fresh process without -W options (pytest installs others).
_PYTHON_DEFAULT_FILTERS = (("ignore", DeprecationWarning), ("ignore", PendingDeprecationWarning),
                           ("ignore", ImportWarning), ("ignore", ResourceWarning))


def invoke(*args: str, cwd: Path | str | None = None, env: dict | None = None,
           input: str | None = None) -> subprocess.CompletedProcess:
    """``edgecnn ARGS`` in this process through click's CliRunner, returned like :func:`run_cli`'s result.

    What a user sees is reproduced: stdout and stderr apart, the exit code of
    ``EdgecnnGroup.main``'s ``sys.exit``, Python warnings printed on stderr as a
    fresh interpreter would print them, and an exception that escapes the CLI
    as a traceback on stderr. ``sys.argv`` is set (``--debug`` is read from it),
    and the environment, working folder and TensorFlow verbosity are restored
    afterwards. TensorFlow's C++ log lines bypass Python: check those with run_cli.
    """
    from click.testing import CliRunner

    from edgecnn import tfquiet
    from edgecnn.cli import cli

    argv = [str(a) for a in args]
    saved_env, saved_argv, saved_cwd, saved_verbose = dict(os.environ), sys.argv, os.getcwd(), tfquiet.is_verbose()
    try:
        sys.argv = ["edgecnn", *argv]
        if cwd is not None:
            os.chdir(cwd)
        with warnings.catch_warnings(record=True) as caught:
            warnings.resetwarnings()
            for action, category in _PYTHON_DEFAULT_FILTERS:
                warnings.simplefilter(action, category)
            result = CliRunner().invoke(cli, argv, prog_name="edgecnn", env=env, input=input)
    finally:
        tfquiet.set_verbose(saved_verbose)  # before the environment: it sets TF_CPP_MIN_LOG_LEVEL there
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    stderr = result.stderr + "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line)
                                     for w in caught)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess(["edgecnn", *argv], result.exit_code, result.stdout, stderr)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str, code: int | None = None) -> str:
    """A clean failure: non-zero (or ``code``), an ``error:`` line naming the problem, no traceback."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


# ----------------------------------------------------------------------------- hiding optional packages


def _dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(lines: Iterable[str]) -> list[str]:
    names = []
    for line in lines:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split(";")[0])
        if match:
            names.append(_dist(match.group(1)))
    return names


def _installed_closure(roots: Iterable[str]) -> set[str]:
    """``roots`` and every installed distribution they require, transitively (extras not followed)."""
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += _requirement_names(r for r in requires if not re.search(r"\bextra\s*==", r))
    return seen


#: Top-level names some wheels ship by accident (tf2onnx's RECORD lists tests/, tools/, examples/).
_NOT_MODULES = {"tests", "test", "tools", "examples", "docs"}


def extra_modules(extra: str = "train") -> tuple[str, ...]:
    """The top-level modules of setup.cfg's ``extra`` that the base install does not bring (not even
    transitively): what a device without the extra cannot import. Read from setup.cfg, so a package
    added to the extra is hidden too."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    base = _installed_closure(_requirement_names(config["options"]["install_requires"].splitlines()))
    wanted = set(_requirement_names(config["options.extras_require"][extra].splitlines())) - base
    modules = {module for module, dists in importlib.metadata.packages_distributions().items()
               if module not in _NOT_MODULES and not module.startswith("_")
               and any(_dist(d) in wanted for d in dists) and not any(_dist(d) in base for d in dists)}
    return tuple(sorted(modules))


#: Everything that is or needs TensorFlow.
TENSORFLOW = ("tensorflow", "keras", "tf2onnx")

_BLOCKER = textwrap.dedent('''
    """Written by tests/helpers.py: these modules are not installed, as far as this process can tell."""
    import sys
    from importlib.machinery import PathFinder

    HIDDEN = {hidden!r}

    class _Without(PathFinder):
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.partition(".")[0] in HIDDEN:
                return None  # import: ModuleNotFoundError; importlib.util.find_spec: None
            return super().find_spec(name, path, target)

        @classmethod
        def find_distributions(cls, *args, **kwargs):
            return (d for d in super().find_distributions(*args, **kwargs)
                    if (d.metadata["Name"] or "").lower().replace("_", "-") not in {hidden_dists!r})

    sys.meta_path[:] = [_Without if finder is PathFinder else finder for finder in sys.meta_path]
''')


def hide_modules(folder: Path, modules: Iterable[str] = TENSORFLOW) -> Path:
    """A folder with a ``sitecustomize.py`` that makes ``modules`` look not installed; put it on PYTHONPATH.

    Hidden as on a machine without them: ``import`` raises ModuleNotFoundError,
    ``importlib.util.find_spec`` returns None and their distributions have no metadata.
    """
    hidden = sorted(set(modules))
    dists = sorted({_dist(d) for m, ds in importlib.metadata.packages_distributions().items() if m in hidden
                    for d in ds} | set(hidden))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_BLOCKER.format(hidden=set(hidden), hidden_dists=set(dists)))
    return folder


def without(tmp_path: Path, modules: Iterable[str] = TENSORFLOW) -> dict[str, str]:
    """Environment variables for a subprocess in which ``modules`` are not installed (use with run_cli's env)."""
    folder = hide_modules(tmp_path / ("without-" + "-".join(sorted(set(modules)))[:60]), modules)
    return {"PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}


def run_python(code: str, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -c CODE ARGS`` in the repository, with the environment pytest started with plus ``env``."""
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          env={**ENV_AT_START, **(env or {})}, timeout=timeout)
