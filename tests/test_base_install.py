"""The base install (a board, a phone): `edgecnn predict` and `edgecnn verify` on the committed bundle's exports
with every package of the ``train`` extra hidden, and nothing of it imported even where it is installed.

Each check runs the CLI in-process inside one fresh interpreter (several commands
per process) and reports, after each command, its exit code and which modules
of the extra are in ``sys.modules``. The modules come from setup.cfg's ``train``
extra (less what the base install brings anyway), so a package added there is
covered without editing this file.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.bundle import MANIFEST_FILE
from edgecnn.export import FORMATS
from edgecnn.runtime import Predictor

from .conftest import blob_images, needs_real_data
from .helpers import REPO, extra_modules, run_python, without

BUNDLE = REPO / "models" / "fashion-cnn"
EXPORTS = {name: BUNDLE / fmt.file for name, fmt in FORMATS.items()}
OPTIONAL = extra_modules("train")

pytestmark = pytest.mark.skipif(not (BUNDLE / MANIFEST_FILE).is_file() or not all(p.is_file() for p in EXPORTS.values()),
                                reason="no committed reference bundle with every export")

#: python -c SCRIPT OPTIONAL_JSON COMMANDS_JSON: each command through the CLI, then one "@@ {...}" line.
SCRIPT = r"""
import json, sys
from edgecnn.cli import cli

optional = set(json.loads(sys.argv[1]))
for args in json.loads(sys.argv[2]):
    try:
        cli.main(args, prog_name="edgecnn")
        code = 0
    except SystemExit as exc:
        code = exc.code
    sys.stderr.flush()
    loaded = sorted(m for m in sys.modules if m.partition(".")[0] in optional)
    print("@@ " + json.dumps({"args": args, "exit": code, "loaded": loaded}), flush=True)
"""


def run_commands(commands: list[list[str]], env: dict | None = None) -> list[tuple[dict, str]]:
    """Each command's report and its stdout, in order."""
    proc = run_python(SCRIPT, json.dumps(OPTIONAL), json.dumps([[str(a) for a in c] for c in commands]), env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results, out = [], []
    for line in proc.stdout.splitlines():
        if line.startswith("@@ "):
            results.append((json.loads(line[3:]), "\n".join(out)))
            out = []
        else:
            out.append(line)
    assert len(results) == len(commands), proc.stdout[-2000:] + proc.stderr[-3000:]
    return results


def test_the_extra_is_what_a_device_lacks():
    assert {"tensorflow", "keras", "tf2onnx", "onnx", "matplotlib"} <= set(OPTIONAL)
    assert not {"numpy", "onnxruntime", "ai_edge_litert", "PIL", "click", "google"} & set(OPTIONAL)


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i, array in enumerate(blob_images(3, seed=5)):
        Image.fromarray(array).save(folder / f"{i}.png")
    return folder


def test_predict_needs_and_imports_nothing_of_the_train_extra(images, tmp_path):
    commands = [["predict", images, "--model", path, "--json", "--top-k", "1"] for path in EXPORTS.values()]
    *hidden, (needs_keras, _) = run_commands([*commands, ["summary"]], env=without(tmp_path, OPTIONAL))
    assert needs_keras["exit"] == 2, needs_keras  # the extra is really hidden there: summary needs TensorFlow
    installed = run_commands(commands)
    files = sorted(images.iterdir())
    for (name, path), (report, stdout), (report_installed, stdout_installed) in zip(EXPORTS.items(), hidden, installed):
        assert report["exit"] == 0 and report["loaded"] == [], (name, report)
        assert report_installed["exit"] == 0 and report_installed["loaded"] == [], (name, report_installed)
        doc = json.loads(stdout)
        assert doc == json.loads(stdout_installed), name  # the same answer whether the extra is there or not
        expected = Predictor.load(path).predict_images(files)
        top = [item["top_k"][0]["label"] for item in doc["images"]]
        assert top == [doc["classes"][int(i)] for i in expected.argmax(1)], name
        assert [item["file"] for item in doc["images"]] == [str(f) for f in files] and doc["failed"] == 0


@needs_real_data
def test_verify_on_the_base_install(tmp_path):
    """The committed bundle verifies from its saved reference probabilities, on all 10,000 real test images."""
    bundle = Path(shutil.copytree(BUNDLE, tmp_path / "bundle"))  # verify writes its results: never into the repo
    (report, stdout), = run_commands([["verify", bundle]], env=without(tmp_path, OPTIONAL))
    assert report["exit"] == 0 and report["loaded"] == [], (report, stdout)
    assert stdout.startswith(f"reference: {bundle / 'reference_probs.npy'} saved at export time"), stdout
    assert stdout.splitlines()[-1].startswith(f"PASS: all {len(FORMATS)} exports"), stdout
    saved = json.loads((bundle / "verify.json").read_text())
    assert saved["passed"] and set(saved["exports"]) == set(FORMATS)
    assert all(result["images"] == 10_000 for result in saved["exports"].values())
    assert np.load(bundle / "reference_probs.npy", allow_pickle=False).shape == (10_000, 10)
