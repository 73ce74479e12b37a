"""The README's architecture x format table is what ``bench/architectures.py`` recorded, and says what it saw."""
from __future__ import annotations

import copy
import json

import pytest

from edgecnn.export import FORMATS
from edgecnn.render.architectures import END, START, architectures_markdown, update_readme_architectures
from edgecnn.render.readme import block_text

from .architectures import TRAINED
from .helpers import REPO

RECORD = REPO / "bench" / "architectures.json"


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(RECORD.read_text(encoding="utf-8"))


def test_readme_block_is_written_from_the_record(record):
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert block_text(text, START, END) == architectures_markdown(record), (
        "README.md's architectures table differs from bench/architectures.json: "
        "run python bench/architectures.py --render README.md")


def test_the_record_covers_every_format_of_trained_architectures(record):
    assert record["architectures"] and set(record["architectures"]) <= set(TRAINED)
    for name, run in record["architectures"].items():
        verified = run["export"]["verify"]["exports"]
        failed = {line.split()[1] for line in run["export"]["fail_lines"] if " not written" in line}
        assert set(verified) | failed == set(FORMATS), name
        for fmt, result in verified.items():  # float16's 0.01 max-diff gate: see test_trained_architectures.py
            if FORMATS[fmt].precision == "float32":
                assert result["passed"], f"{name} {fmt} failed verify in the recorded run: {result['failures']}"
            if FORMATS[fmt].precision == "float16":
                assert result["agreement"] >= 0.995, f"{name} {fmt}: {result['failures']}"


def test_a_failed_export_shows_as_fail(record):
    changed = copy.deepcopy(record)
    name = next(iter(changed["architectures"]))
    result = changed["architectures"][name]["export"]["verify"]["exports"]["tflite"]
    result["passed"], result["agreement"] = False, 0.5
    assert architectures_markdown(changed) != architectures_markdown(record)
    assert "| `tflite` | FAIL 50.0%" in architectures_markdown(changed)


def test_update_rewrites_only_the_block(record, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{START}\nstale\n{END}\nafter\n", encoding="utf-8")
    assert update_readme_architectures(readme, record)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("before\n") and text.endswith("after\n") and "stale" not in text
    assert not update_readme_architectures(readme, record)
