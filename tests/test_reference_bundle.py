"""The committed reference bundle: intact, verified, accurate, up to date, and what the README shows."""
from __future__ import annotations

import json
import shutil

import pytest

from edgecnn.bundle import MANIFEST_FILE, METRICS_FILE, MODEL_FILE, read_manifest
from edgecnn.export import FORMATS
from edgecnn.fileio import sha256_file
from edgecnn.render.readme import END, START, figures_markdown

from .conftest import needs_real_data
from .helpers import REPO, run_cli

BUNDLE = REPO / "models" / "fashion-cnn"
EXPORT_FILES = {fmt.file for fmt in FORMATS.values()}  # the committed bundle has every format

pytestmark = pytest.mark.skipif(not (BUNDLE / MANIFEST_FILE).is_file(), reason="no committed reference bundle")


def test_every_file_matches_its_manifest_sha256():
    manifest = read_manifest(BUNDLE)
    assert {entry["file"] for entry in manifest["exports"].values()} == EXPORT_FILES
    for entry in manifest["exports"].values():
        assert sha256_file(BUNDLE / entry["file"]) == entry["sha256"], entry["file"]
        assert (BUNDLE / entry["file"]).stat().st_size == entry["bytes"]
    assert sha256_file(BUNDLE / MODEL_FILE) == manifest["model"]["sha256"]


def test_reference_accuracy_is_at_least_the_textbook_floor():
    metrics = json.loads((BUNDLE / METRICS_FILE).read_text())
    assert metrics["test_accuracy"] >= 0.905 and metrics["params"] == 333_526 and metrics["seed"] == 42


def test_readme_figures_are_the_bundle_figures():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split(START)[1].split(END)[0].strip()
    assert block == figures_markdown(BUNDLE, relative_to=REPO).strip()


@needs_real_data
def test_committed_bundle_passes_verify(tmp_path):
    copy = shutil.copytree(BUNDLE, tmp_path / "bundle")
    proc = run_cli("verify", copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASS") >= len(EXPORT_FILES) and "FAIL" not in proc.stdout


@needs_real_data
def test_pipeline_on_a_fresh_clone_of_the_bundle_has_nothing_to_redo(tmp_path):
    """What `make demo` does on a clean clone: every step is up to date, so it takes seconds."""
    copy = shutil.copytree(BUNDLE, tmp_path / "bundle")
    proc = run_cli("pipeline", "--out", copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = [line for line in proc.stdout.splitlines() if line.split()[:1] and line.split()[0] in
             ("train", "export", "verify", "bench", "report")]
    assert steps and all("skip" in line for line in steps), proc.stdout
