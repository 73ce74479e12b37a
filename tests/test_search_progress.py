"""Progress of the per-layer int8 measurements: the library reports (what, done, total), the CLI prints it.

On a real network (EfficientNetB0: about 80 layers, seconds each) the mixed-precision
search and the latency timing take minutes; without these lines export and explain
would print nothing meanwhile.
"""
from __future__ import annotations

import io
from collections import defaultdict

import numpy as np

from .conftest import make_idx_dataset
from .helpers import invoke
from .test_mixed_precision import FakeCalibrated, FakeEvaluator, _latency


def assert_counts_up(calls: list[tuple[str, int, int]]) -> list[str]:
    """Each ``what`` counts 0, 1, ... up to its one total (the bisection and the return pass may stop short);
    its steps in the order they began."""
    from edgecnn.quantize.mixed import KEEPING_FLOAT, RETURNING_TO_INT8

    counts, totals = defaultdict(list), defaultdict(set)
    for what, done, total in calls:
        counts[what].append(done)
        totals[what].add(total)
    for what, dones in counts.items():
        (total,) = totals[what]
        upto = dones[-1] if what.endswith((KEEPING_FLOAT, RETURNING_TO_INT8)) else total
        assert dones == list(range(upto + 1)), (what, dones)
    return list(counts)


def test_choose_reports_every_candidate_and_ends_each_step_at_its_total():
    from edgecnn.quantize.mixed import KEEPING_FLOAT, RETURNING_TO_INT8, choose

    calibrated = FakeCalibrated({"a": 0.0, "b": 3.0, "c": 1.0})
    latencies = [_latency(3.0), _latency(0.2), _latency(0.2)]  # a: slower in int8, free to keep float
    calls = []
    choice = choose(calibrated, FakeEvaluator(calibrated, 0.86), 0.5, latencies,
                    on_progress=lambda *call: calls.append(call))
    assert [(r.precision, r.reason) for r in choice.layers] == [("float32", "latency"), ("float32", "error"),
                                                                 ("float32", "error")]
    assert assert_counts_up(calls) == ["measuring harm", "trying float for speed", KEEPING_FLOAT, RETURNING_TO_INT8]
    # b and c left, so one bisection step (b alone misses) finds both
    assert [call for call in calls if call[0] == KEEPING_FLOAT] == [(KEEPING_FLOAT, d, 1) for d in (0, 1)]
    silent = choose(calibrated, FakeEvaluator(calibrated, 0.86), 0.5, latencies)  # the default: no callback
    assert silent.float_layers() == choice.float_layers()


def test_export_and_the_chooser_report_each_layer_under_the_format_name(tiny_models, tmp_path):
    from edgecnn.export import export_model

    data = make_idx_dataset(tmp_path / "idx", n_train=120, n_test=20)
    calls = []
    # a budget all-int8 meets: export times each layer, and measures none alone (no search)
    export_model(tiny_models["keras"], ["tflite-int8"], tmp_path / "out", data=data, calibration_samples=40,
                 max_accuracy_drop=100.0, on_layer_progress=lambda *call: calls.append(call))
    steps = assert_counts_up(calls)
    assert steps[0] == "tflite-int8: timing float32 and int8" and "tflite-int8: measuring harm" not in steps
    assert all(step.startswith("tflite-int8: ") for step in steps)
    assert ("tflite-int8: timing float32 and int8", 2, 2) in calls  # the Conv2D and the Dense


def test_explain_prints_layer_progress_on_stderr(tiny_models, tmp_path):
    data = make_idx_dataset(tmp_path / "idx", n_train=120, n_test=20)
    proc = invoke("explain", "--model", tiny_models["keras"], "--format", "tflite-int8", "--data", data,
                  "--calibration-samples", "40", "--max-accuracy-drop", "100")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    for what in ("timing float32 and int8", "measuring harm"):
        assert f"tflite-int8: {what}: 0/2 layers (0 s)" in lines, proc.stderr
        assert any(line.startswith(f"tflite-int8: {what}: 2/2 layers (") for line in lines), proc.stderr
    assert "\r" not in proc.stderr  # not a terminal: whole lines
    assert "layers (" not in proc.stdout  # the table alone on stdout


def test_a_log_gets_a_line_every_few_seconds_and_a_terminal_one_line_rewritten(monkeypatch):
    from edgecnn import cli

    clock = iter(np.arange(0.0, 100.0, 1.0))
    monkeypatch.setattr(cli.time, "monotonic", lambda: next(clock))
    log = io.StringIO()
    monkeypatch.setattr(cli.sys, "stderr", log)
    show = cli.layer_progress()
    for done in range(13):  # one layer a second
        show("tflite-int8: measuring harm", done, 12)
    assert log.getvalue().splitlines() == [
        "tflite-int8: measuring harm: 0/12 layers (0 s)", "tflite-int8: measuring harm: 5/12 layers (5 s, about 7 s left)",
        "tflite-int8: measuring harm: 10/12 layers (10 s, about 2 s left)", "tflite-int8: measuring harm: 12/12 layers (12 s)"]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(cli.sys, "stderr", terminal)
    show = cli.layer_progress()
    for done in range(3):
        show("onnx-int8: timing float32 and int8", done, 2)
    shown = terminal.getvalue()  # the last line padded over the longer one before it (its estimate)
    assert shown.count("\n") == 1 and shown.endswith("\n") and shown.rstrip().endswith("2/2 layers (2 s)")
    assert terminal.getvalue().count("\r") == 3
