"""bench/RESULTS.md's latency table on real sizes is the render of what bench/real_sizes.py recorded, and
survives bench/run_benchmarks.py rewriting the rest of the file."""
from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from edgecnn.render.readme import block_text
from edgecnn.render.real_sizes import END, START, render

from .helpers import REPO

RECORD = REPO / "bench" / "real_sizes.json"


@pytest.mark.skipif(not RECORD.is_file(), reason="bench/real_sizes.py has not been run")
def test_the_block_is_the_render_of_the_recorded_run():
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    assert block_text((REPO / "bench" / "RESULTS.md").read_text(encoding="utf-8"), START, END) == render(record)
    assert {"reference CNN (28x28)", "MobileNetV2 (alpha 1.0)", "MobileNetV3Small"} <= set(record["models"])
    for row in record["models"].values():
        assert all(row[name]["p50_s"] > 0 for name in ("tflite", "tflite-int8", "onnx", "onnx-int8"))


def test_a_rewrite_of_results_keeps_the_block(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("run_benchmarks_kept", REPO / "bench" / "run_benchmarks.py")
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, script)
    spec.loader.exec_module(script)
    results = tmp_path / "RESULTS.md"
    assert script._kept(results, START, END, "real_sizes.py").startswith("Not measured yet")
    results.write_text(f"# old\n{START}\n| a table |\n{END}\n", encoding="utf-8")
    assert script._kept(results, START, END, "real_sizes.py") == "| a table |"
