"""Reason ``delegate``: int8 ops that XNNPACK leaves on the CPU (HARD_SWISH, as in MobileNetV3) weigh in the choice.

The fact comes from the file (which layers' int8 ops the delegate refuses, and
takes in float); the decision from timing the whole candidate model, because an
island of CPU ops may cost less than the float layers around it (at 32x32,
MobileNetV3Small runs faster all-int8). Fakes pin the decision logic; a small
hard-swish model pins the fact.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from edgecnn.datasets import Dataset
from edgecnn.convert.source import ExportSource
from edgecnn.fileio import sha256_file
from .test_int16x8 import CLASSES, SHAPE, class_images, tiny_model
from .test_mixed_precision import FakeCalibrated, FakeEvaluator


def _choose(gains: dict[str, float], timings: list[float] | None):
    from edgecnn.quantize.mixed import choose

    calibrated = FakeCalibrated(gains)
    time_models = None if timings is None else (lambda models: timings)
    return choose(calibrated, FakeEvaluator(calibrated, 0.90), 0.5, cpu_ops={1: ("HARD_SWISH",)},
                  time_models=time_models)


def test_cpu_bound_layers_go_float_when_the_whole_model_is_faster():
    choice = _choose({"a": 0.0, "b": 0.0}, [2e-3, 1e-3])
    assert [(r.precision, r.reason, r.cpu_ops) for r in choice.layers] == [
        ("int8", "budget", ()), ("float32", "delegate", ("HARD_SWISH",))]
    assert choice.delegate.kept_float and choice.delegate.ops == ("HARD_SWISH",) and choice.delegate.layers == 1
    assert choice.manifest_fields("v")["mixed_precision"]["delegate"]["kept_float"] is True


@pytest.mark.parametrize("gains, timings, why", [
    ({"a": 0.0, "b": 0.0}, [1.0e-3, 0.95e-3], "within the timing margin"),
    ({"a": 0.0, "b": -1.0}, [2e-3, 1e-3], "float costs 1 point, over the 0.5 budget"),
])
def test_cpu_bound_layers_stay_int8_unless_float_is_measured_faster_within_budget(gains, timings, why):
    choice = _choose(gains, timings)
    assert choice.float_layers() == [], why
    assert choice.layers[1].cpu_ops == ("HARD_SWISH",) and choice.delegate.kept_float is False
    assert "kept int8" in choice.delegate.line()


def test_without_timing_the_fact_is_recorded_and_nothing_moves():
    choice = _choose({"a": 0.0, "b": 0.0}, None)
    assert choice.float_layers() == [] and choice.delegate is None
    assert choice.manifest_fields("v")["layers"][1]["cpu_ops"] == ["HARD_SWISH"]


def _source(folder: Path, activation: str) -> ExportSource:
    from edgecnn.model import save_model

    model = tiny_model(activation)
    path = save_model(model, folder / f"{activation}.keras")
    x, y = class_images(64, seed=2)
    data = Dataset(x, y, None, None, None, "class bands")
    return ExportSource(model, path, sha256_file(path), SHAPE, CLASSES, data,
                        {"input_range": "0-255"}, calibration_samples=32)


@pytest.mark.parametrize("activation, stranded", [("hard_swish", {0: ("HARD_SWISH",)}), ("relu", {})])
def test_the_layers_whose_int8_ops_xnnpack_refuses_are_found(tmp_path, activation, stranded):
    from edgecnn.quantize.tflite_layers import CalibratedTFLite
    from edgecnn.runtime.xnnpack import cpu_ops

    source = _source(tmp_path, activation)
    calibrated = CalibratedTFLite(source, source.calibration()[:16])
    assert calibrated.cpu_ops() == stranded
    for index in stranded:  # float, the delegate takes them: the reason is real
        left = {op.op for op in cpu_ops(calibrated.quantize([calibrated.layers[index]]))}
        assert not left & set(stranded[index])


def test_the_tflite_choice_times_the_hard_swish_model_and_says_what_it_decided(tmp_path):
    from edgecnn.quantize import choose_tflite_int8

    choice = choose_tflite_int8(_source(tmp_path, "hard_swish"), 0.5, latency_runs=50)
    conv = choice.layers[0]
    assert conv.cpu_ops == ("HARD_SWISH",) and conv.float32_s > 0 and conv.int8_s > 0  # timed alone too
    # slower alone in int8 (its HARD_SWISH off the delegate), the latency check times it whole; else the delegate's
    checks = [check for check in (choice.latency, choice.delegate) if check is not None]
    assert checks and all(check.int8_s > 0 and check.float_s > 0 for check in checks)
    assert (conv.precision == "float32") == any(check.kept_float for check in checks)
    assert choice.note() == "; ".join(check.line() for check in checks)
