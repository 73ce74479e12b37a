"""The test helpers themselves: the in-process CLI shows what a process shows, hidden packages are really gone."""
from __future__ import annotations

import json
import os
import warnings

from .helpers import TENSORFLOW, extra_modules, invoke, run_cli, run_python, without


def test_invoke_separates_the_streams_and_keeps_the_exit_code(tmp_path):
    missing = tmp_path / "nowhere"
    proc, real = invoke("verify", missing), run_cli("verify", missing)
    assert (proc.returncode, proc.stdout, proc.stderr) == (real.returncode, real.stdout, real.stderr) == (
        2, "", real.stderr)
    assert proc.stderr.startswith("error: ") and str(missing) in proc.stderr
    ok = invoke("--version")
    assert ok.returncode == 0 and "edgecnn" in ok.stdout and ok.stderr == ""


def test_invoke_restores_the_process_and_reads_debug_from_argv(tmp_path, monkeypatch):
    before = dict(os.environ), os.getcwd()
    proc = invoke("--debug", "verify", tmp_path / "nowhere", env={"EDGECNN_DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    assert (dict(os.environ), os.getcwd()) == before  # incl. what the CLI's TensorFlow quieting sets there
    assert proc.returncode == 2 and "Traceback (most recent call last)" in proc.stderr  # --debug: the traceback
    assert "Traceback" not in invoke("verify", tmp_path / "nowhere").stderr


def test_invoke_shows_python_warnings_and_escaped_exceptions(monkeypatch):
    import edgecnn.cli

    def noisy(*_args, **_kwargs):
        warnings.warn("a deprecated thing", UserWarning)
        raise SystemExit(0)

    monkeypatch.setattr(edgecnn.cli.EdgecnnGroup, "main", noisy)  # what a process would print, not pytest's capture
    proc = invoke("verify")
    assert proc.returncode == 0 and "UserWarning: a deprecated thing" in proc.stderr

    def escaping(*_args, **_kwargs):
        raise RuntimeError("escaped the CLI")

    monkeypatch.setattr(edgecnn.cli.EdgecnnGroup, "main", escaping)
    proc = invoke("verify")  # as a process dies of it: exit 1 and the traceback on stderr
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "RuntimeError: escaped the CLI" in proc.stderr


def test_hidden_modules_look_not_installed(tmp_path):
    code = (
        "import importlib.util, importlib.metadata, json\n"
        "out = {'spec': importlib.util.find_spec('tensorflow') is None}\n"
        "try:\n    import keras\nexcept ModuleNotFoundError as exc:\n    out['import'] = exc.name\n"
        "try:\n    importlib.metadata.version('tensorflow')\nexcept importlib.metadata.PackageNotFoundError:\n"
        "    out['metadata'] = 'none'\n"
        "import numpy, onnxruntime\n"
        "print(json.dumps(out))\n"
    )
    proc = run_python(code, env=without(tmp_path, TENSORFLOW))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"spec": True, "import": "keras", "metadata": "none"}
    shown = run_python("import importlib.util; print(importlib.util.find_spec('tensorflow') is not None)")
    assert shown.stdout.strip() == "True"  # only where hidden


def test_the_train_extra_is_read_from_setup_cfg():
    modules = extra_modules("train")
    assert {"tensorflow", "tf2onnx", "onnx", "matplotlib", "selenium"} <= set(modules)  # selenium: bench --browser
    assert "numpy" not in modules and "google" not in modules  # the base install brings them (onnxruntime)
