"""`edgecnn bench`: the harness (statistics on fake runtimes), model facts, result files, options.

Timings are never asserted beyond sanity (> 0): targets are checked by bench/ scripts.
"""
from __future__ import annotations

import csv
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgecnn import bench as lib
from edgecnn.bench.facts import file_facts, keras_facts, liveness_peak
from edgecnn.bench.timing import measure, summarize, time_calls
from edgecnn.errors import EdgecnnError
from edgecnn.model import REFERENCE_PARAMS

from .helpers import assert_one_line_error, invoke, run_python

ROW_FIELDS = ("name", "file", "backend", "precision", "mode", "batch_size", "threads", "load_s", "first_inference_s",
              "latency_s", "images_per_s", "peak_rss_mb", "file_bytes", "params", "macs", "arena_bytes", "accuracy")


class FakeRuntime:
    """A runtime whose calls take known times on a fake clock (exact statistics, no sleeping)."""

    def __init__(self, delays: list[float]) -> None:
        self.delays = iter(delays)
        self.now = 0.0
        self.calls = 0

    def clock(self) -> float:
        return self.now

    def __call__(self) -> None:
        self.calls += 1
        self.now += next(self.delays)


# --------------------------------------------------------------------------- harness


def test_summarize_matches_definitions():
    samples = [0.001 * i for i in range(1, 101)]  # 1..100 ms
    stats = summarize(samples)
    assert stats.p50 == pytest.approx(0.0505)
    assert stats.p90 == pytest.approx(np.percentile(samples, 90))
    assert stats.p99 == pytest.approx(np.percentile(samples, 99))
    assert stats.mean == pytest.approx(0.0505)
    assert stats.std == pytest.approx(np.std(samples))
    with pytest.raises(ValueError):
        summarize([])


def test_warmup_is_not_timed_and_every_run_is():
    # 5 slow warm-up calls (1 s) must not show; then 1 ms x 90 and 10 ms x 10.
    fake = FakeRuntime([1.0] * 5 + [0.001] * 90 + [0.010] * 10)
    samples = time_calls(fake, runs=100, warmup=5, clock=fake.clock)
    assert fake.calls == 105 and len(samples) == 100
    stats = summarize(samples)
    assert stats.p50 == pytest.approx(0.001)
    assert stats.p99 == pytest.approx(0.010)
    assert stats.mean == pytest.approx((90 * 0.001 + 10 * 0.010) / 100)


def test_measure_separates_load_first_call_and_runs():
    fake = FakeRuntime([0.5] + [0.2] * 3 + [0.004] * 20)  # first call 0.5 s, warm-up 0.2 s, runs 4 ms

    def load():
        fake.now += 2.0  # loading takes 2 s
        return fake

    timing = measure(load, batch_size=8, runs=20, warmup=3, clock=fake.clock)
    assert timing.load_s == pytest.approx(2.0)
    assert timing.first_inference_s == pytest.approx(0.5)
    assert timing.latency.p50 == pytest.approx(0.004) and timing.latency.std == pytest.approx(0.0)
    assert timing.images_per_s == pytest.approx(8 / 0.004)


def test_real_sleep_is_measured_within_tolerance():
    samples = time_calls(lambda: time.sleep(0.005), runs=10, warmup=1)
    assert 0.004 <= summarize(samples).p50 < 0.1  # generous upper bound: a busy CI machine


def test_bad_run_counts_are_refused():
    with pytest.raises(ValueError):
        time_calls(lambda: None, runs=0)
    with pytest.raises(ValueError):
        time_calls(lambda: None, runs=1, warmup=-1)


# --------------------------------------------------------------------------- facts and options


def test_liveness_peak_counts_only_tensors_alive_together():
    # input 0 (10 B) -> op0 -> 1 (100 B) -> op1 -> 2 (20 B) -> op2 -> 3 (5 B, output); 9 is a weight.
    ops = [([0, 9], [1]), ([1], [2]), ([2], [3])]
    sizes = {0: 10, 1: 100, 2: 20, 3: 5, 9: 1000}
    assert liveness_peak(ops, [0], [3], sizes) == 120  # at op1: tensor 1 in, tensor 2 out
    # a graph input still read by the last op stays alive throughout
    assert liveness_peak([([0], [1]), ([1, 0], [2])], [0], [2], {0: 7, 1: 3, 2: 1}) == 11


@pytest.mark.parametrize("text, option, allow_n, expected", [
    ("1,32", "--batch-sizes", False, (1, 32)),
    (" 4 , 4,8", "--batch-sizes", False, (4, 8)),
    ("1,N", "--threads", True, (1, None)),
])
def test_parse_counts(text, option, allow_n, expected):
    assert lib.options.parse_counts(text, option, high=4096, allow_n=allow_n) == expected


@pytest.mark.parametrize("call, needle", [
    (lambda: lib.options.parse_counts("1,x", "--batch-sizes", high=4096), "'x' is not a whole number"),
    (lambda: lib.options.parse_counts("N", "--batch-sizes", high=4096), "'N' is not a whole number"),
    (lambda: lib.options.parse_counts("0", "--batch-sizes", high=4096), "between 1 and 4,096"),
    (lambda: lib.options.parse_count("1.5", "--runs", low=1, high=10), "not a whole number"),
    (lambda: lib.BenchConfig.checked((1,), (1,), 0, 0), "--runs must be between 1"),
    (lambda: lib.BenchConfig.checked((5000,), (1,), 1, 0), "--batch-sizes must be between"),
    (lambda: lib.BenchConfig.checked((1,), (0,), 1, 0), "--threads must be between"),
    (lambda: lib.BenchConfig.checked((1,), (1,), 1, -1), "--warmup must be between 0"),
    (lambda: lib.BenchConfig.checked((True,), (1,), 1, 0), "whole number"),
])
def test_bad_options_are_one_line_errors(call, needle):
    with pytest.raises(EdgecnnError, match=needle):
        call()


def test_threads_n_means_all_cores():
    import os

    assert lib.BenchConfig.checked((1,), (1, None), 1, 0).threads == tuple(dict.fromkeys((1, os.cpu_count())))


@pytest.mark.parametrize("args, needle", [
    (["--runs", "many"], "--runs: 'many' is not a whole number"),
    (["--batch-sizes", "1,0"], "--batch-sizes must be between 1 and 4,096"),
    (["--threads", "two"], "--threads: 'two'"),
    (["--runs", "2000000"], "--runs must be between 1 and 1,000,000"),
])
def test_cli_bad_options_exit_2(args, needle):
    assert_one_line_error(invoke("bench", *args), needle, code=2)


def test_cli_bad_targets_exit_2(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert_one_line_error(invoke("bench", tmp_path / "missing.tflite"), "missing.tflite not found", code=2)
    assert_one_line_error(invoke("bench", tmp_path / "notes.txt"), "unknown model type", code=2)
    assert_one_line_error(invoke("bench", tmp_path), "no manifest.json", code=2)


def test_compare_refuses_bad_files(tmp_path):
    good, partial = tmp_path / "good.json", tmp_path / "partial.json"
    row = {"name": "tflite", "mode": "raw", "batch_size": 1, "threads": 1, "latency_s": {"p50": 1e-4, "p99": 2e-4},
           "images_per_s": 1e4}
    good.write_text(json.dumps({"schema": 1, "results": [row]}))
    partial.write_text(json.dumps({"schema": 1, "results": [{"name": "a"}]}))
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(EdgecnnError, match="at least two"):
        lib.compare([good])
    with pytest.raises(EdgecnnError, match="empty.json has no 'schema' field"):
        lib.compare([good, tmp_path / "empty.json"], plot_path=None)
    with pytest.raises(EdgecnnError, match="not found"):
        lib.compare([good, tmp_path / "missing.json"], plot_path=None)
    proc = invoke("bench", "--compare", good, partial, "--plot", tmp_path / "c.png")
    assert_one_line_error(proc, "partial.json: field results[0].mode is missing", code=2)


# --------------------------------------------------------------------------- a real run on a tiny model


BENCHED = ("tflite", "onnx")


@pytest.fixture(scope="module")
def bench_bundle(tiny_bundle, tmp_path_factory):
    """The session's tiny bundle (reference CNN, synthetic data) with only its float32 TFLite and ONNX exports."""
    from edgecnn.bundle.manifest import update_manifest

    out = shutil.copytree(tiny_bundle, tmp_path_factory.mktemp("bench") / "bundle")

    def keep_float32(manifest):
        for key in [k for k in manifest["exports"] if k not in BENCHED]:
            (out / manifest["exports"].pop(key)["file"]).unlink()

    update_manifest(out, keep_float32)
    return out


@pytest.fixture(scope="module")
def tiny_report(bench_bundle, tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-out")
    report = lib.bench([bench_bundle], batch_sizes=(1,), threads=(1,), runs=20, warmup=2, progress=False,
                       data=tiny_data, json_path=out / "copy.json", csv_path=out / "rows.csv",
                       plot_path=out / "chart.png")
    return report, out


def test_every_mode_and_field_is_there(bench_bundle, tiny_report):
    report, _ = tiny_report
    modes = {(r["name"], r["mode"]) for r in report.results}
    assert modes == {("tflite", "predictor"), ("tflite", "raw"), ("onnx", "predictor"), ("onnx", "raw"),
                     ("keras", "keras.predict"), ("keras", "keras.call")}
    for row in report.results:
        assert set(ROW_FIELDS) <= set(row), set(ROW_FIELDS) - set(row)
        assert row["load_s"] > 0 and row["first_inference_s"] > 0 and row["images_per_s"] > 0
        assert all(row["latency_s"][k] > 0 for k in ("p50", "p90", "p99", "mean"))
        assert row["peak_rss_mb"] > 0 and row["file_bytes"] > 0
        assert row["params"] == REFERENCE_PARAMS
        assert row["threads"] == 1 and row["runs"] == 20 and row["warmup"] == 2
    assert len({r["macs"] for r in report.results}) == 1  # every format describes the same graph
    assert {r["backend"] for r in report.results} == {"litert", "onnxruntime", "keras"}
    assert all(r["arena_bytes"] > 0 for r in report.results if r["name"] == "tflite")
    assert all(r["accuracy"] is not None for r in report.results if r["name"] == "keras")  # from metrics.json
    assert set(report.ratios) >= {"predictor_overhead:tflite", "predictor_overhead:onnx",
                                  "keras_predict_vs_fastest", "keras_call_vs_fastest"}
    assert all(r["value"] > 0 for r in report.ratios.values())
    paired = report.ratios["predictor_overhead:tflite"]["paired_p50_s"]  # where the Predictor's time goes
    assert set(paired) == {"predictor", "raw", "prepare"} and all(v > 0 for v in paired.values())


def test_one_process_loads_each_model_once_for_its_cases(tiny_report):
    """Each model's rows share one cold load (one process per model): a Keras model is not imported four times."""
    report, _ = tiny_report
    for name in ("tflite", "onnx", "keras"):
        loads = {r["load_s"] for r in report.results if r["name"] == name}
        assert len(loads) == 1, (name, loads)
    assert len({r["load_s"] for r in report.results}) == 3


def test_without_raw_cases_the_predictor_still_times_the_bare_call(bench_bundle, tmp_path):
    """--quick leaves out the raw rows, not the predictor's overhead, which its own alternation measures."""
    model = Path(shutil.copy(bench_bundle / "model_fp32.tflite", tmp_path / "model_fp32.tflite"))
    report = lib.bench([model], batch_sizes=(1,), threads=(1,), runs=5, warmup=0, progress=False, raw_cases=False)
    assert [r["mode"] for r in report.results] == ["predictor"]
    assert set(report.results[0]["paired_p50_s"]) == {"predictor", "raw", "prepare"}
    assert "predictor_overhead:model_fp32.tflite" in report.ratios
    assert json.loads((tmp_path / "bench.json").read_text())["config"]["raw_cases"] is False
    assert lib.parse_options(quick=True)["raw_cases"] is False and lib.parse_options()["raw_cases"] is True


def test_results_are_written(bench_bundle, tiny_report):
    report, out = tiny_report
    stored = json.loads((bench_bundle / "bench.json").read_text())
    assert set(stored) >= {"machine", "created", "config", "results", "ratios"}
    assert stored["machine"]["cores"] and stored["machine"]["cpu"]
    assert stored["config"]["batch_sizes"] == [1] and stored["config"]["runs"] == 20
    assert "test split of" in stored["config"]["input"] or "random" in stored["config"]["input"]
    assert json.loads((out / "copy.json").read_text())["results"] == stored["results"]
    with open(out / "rows.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(report.results) and float(rows[0]["latency_p50_s"]) > 0
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "keras.predict" in report.table()


def test_compare_merges_two_machines(bench_bundle, tmp_path):
    first, second = tmp_path / "laptop.json", tmp_path / "board.json"
    shutil.copy(bench_bundle / "bench.json", first)
    data = json.loads(first.read_text())
    data["machine"]["cpu"] = "Cortex-A76"
    second.write_text(json.dumps(data))
    proc = invoke("bench", "--compare", first, second, "--plot", tmp_path / "cmp.png", "--csv", tmp_path / "cmp.csv",
                  "--json", tmp_path / "cmp.json")
    assert proc.returncode == 0, proc.stderr
    assert "laptop" in proc.stdout and "board" in proc.stdout
    merged = json.loads((tmp_path / "cmp.json").read_text())
    assert [s["label"] for s in merged["sources"]] == ["laptop", "board"]
    assert merged["sources"][1]["machine"]["cpu"] == "Cortex-A76"
    assert len(merged["results"]) == 2 * len(data["results"])
    assert (tmp_path / "cmp.png").stat().st_size > 0 and (tmp_path / "cmp.csv").stat().st_size > 0


def test_cli_on_one_file(bench_bundle, tmp_path):
    model = tmp_path / "model_fp32.tflite"
    shutil.copy(bench_bundle / "model_fp32.tflite", model)  # outside the bundle: named by its file
    proc = invoke("bench", model, "--batch-sizes", "1,3", "--threads", "1", "--runs", "5", "--warmup", "0")
    assert proc.returncode == 0, proc.stderr
    assert "model_fp32.tflite" in proc.stdout and "predictor_overhead:model_fp32.tflite" in proc.stdout
    rows = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert [(r["mode"], r["batch_size"]) for r in rows] == [("predictor", 1), ("raw", 1), ("predictor", 3), ("raw", 3)]
    assert rows[2]["images_per_s"] > 0 and rows[2]["precision"]  # read from the file itself (no manifest)


def test_without_tensorflow_keras_rows_are_absent_with_a_note(bench_bundle, monkeypatch):
    monkeypatch.setattr(lib.targets, "tensorflow_installed", lambda: False)
    targets, notes = lib.find_targets([bench_bundle])
    assert {t.name for t in targets} == {"tflite", "onnx"}
    assert any("TensorFlow is not installed" in n for n in notes)


def test_facts_agree_across_formats(bench_bundle):
    from edgecnn.model import load_model

    tflite, onnx = file_facts(bench_bundle / "model_fp32.tflite"), file_facts(bench_bundle / "model_fp32.onnx")
    keras = keras_facts(load_model(bench_bundle / "model.keras"))
    assert tflite.params == onnx.params == keras.params == REFERENCE_PARAMS
    # conv 28*28*32*9 + conv 14*14*64*288 + dense 3136*100 + dense 100*10
    assert tflite.macs == onnx.macs == keras.macs == 225_792 + 3_612_672 + 313_600 + 1_000
    # float32 activations: conv1 out (100,352 B) + pool1 out (25,088 B) alive together at the first pooling
    assert tflite.arena_bytes == 28 * 28 * 32 * 4 + 14 * 14 * 32 * 4


def test_accuracy_comes_from_the_verify_results(bench_bundle, tmp_path):
    from edgecnn.bundle.manifest import update_manifest

    bundle = tmp_path / "bundle"
    shutil.copytree(bench_bundle, bundle)
    update_manifest(bundle, lambda m: m["exports"]["onnx"].update(
        verify={"passed": True, "verified_at": "2026-01-01T00:00:00+00:00", "accuracy": 0.875}))
    accuracy = {t.name: t.accuracy for t in lib.find_targets([bundle])[0]}
    assert accuracy["onnx"] == 0.875 and accuracy["tflite"] is None


def test_same_images_for_every_runtime(tmp_path):
    images, described = lib.targets.bench_images(5, (28, 28, 1), tmp_path, data=tmp_path)  # no dataset: seeded random
    again, _ = lib.targets.bench_images(5, (28, 28, 1), tmp_path, data=tmp_path)
    assert images.dtype == np.uint8 and images.shape == (5, 28, 28, 1) and "random" in described
    assert np.array_equal(images, again)
    other, described = lib.targets.bench_images(2, (32, 32, 3), tmp_path)
    assert other.shape == (2, 32, 32, 3) and "random" in described


def test_a_time_budget_stops_slow_cases_but_keeps_a_minimum():
    from edgecnn.bench.timing import MIN_BUDGET_RUNS

    fake = FakeRuntime([1.0] * 1000)  # 1 s per call, 10 s budget: stops at the minimum number of runs
    assert len(time_calls(fake, runs=1000, max_seconds=10, clock=fake.clock)) == MIN_BUDGET_RUNS
    fake = FakeRuntime([0.001] * 1000)  # fast calls: all runs fit in the budget
    assert len(time_calls(fake, runs=1000, max_seconds=10, clock=fake.clock)) == 1000
    fake = FakeRuntime([1.0] * 1000)  # the quick preset keeps fewer
    assert len(time_calls(fake, runs=1000, max_seconds=2, min_runs=5, clock=fake.clock)) == 5


def test_the_budget_bounds_warm_up_and_timed_runs_together():
    """A case costs its budget, not twice it: the warm-up takes a quarter, the timed runs the rest."""
    from edgecnn.bench.timing import WARMUP_SHARE

    fake = FakeRuntime([0.1] * 10_000)
    samples = time_calls(fake, runs=1000, warmup=1000, max_seconds=10, min_runs=1, clock=fake.clock)
    assert fake.now == pytest.approx(10, abs=0.11)
    assert fake.calls - len(samples) == pytest.approx(10 * WARMUP_SHARE / 0.1, abs=1)
    fake = FakeRuntime([5.0] * 10)  # one slow call already spends the warm-up share: never no warm-up at all
    assert len(time_calls(fake, runs=5, warmup=3, max_seconds=4, min_runs=2, clock=fake.clock)) == 2
    assert fake.calls == 3


def test_alternating_calls_are_timed_separately():
    from edgecnn.bench.timing import time_alternating

    now = [0.0]
    slow = lambda: now.__setitem__(0, now[0] + 0.003)  # noqa: E731
    fast = lambda: now.__setitem__(0, now[0] + 0.001)  # noqa: E731
    a, b = time_alternating([slow, fast], runs=10, warmup=2, clock=lambda: now[0])
    assert np.allclose(a, 0.003) and np.allclose(b, 0.001)


def test_exports_are_benchmarked_without_tensorflow(bench_bundle, tmp_path):
    """The base install (a board, a phone) runs `edgecnn bench` on exports: TensorFlow is never imported."""
    model = tmp_path / "model_fp32.onnx"
    shutil.copy(bench_bundle / "model_fp32.onnx", model)
    code = (
        "import json, sys\n"
        "from edgecnn import bench\n"
        "from edgecnn.bench.worker import run_group\n"
        f"targets, _ = bench.find_targets([{str(model)!r}])\n"
        f"images, _ = bench.targets.bench_images(1, (28, 28, 1), {str(tmp_path)!r})\n"
        f"import numpy as np; np.save({str(tmp_path / 'x.npy')!r}, images)\n"
        f"run_group({{'path': {str(model)!r}, 'cases': [{{'mode': 'predictor', 'batch_size': 1}}], 'threads': 1,"
        f" 'runs': 3, 'warmup': 0, 'min_runs': 1, 'images': {str(tmp_path / 'x.npy')!r}}})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))))\n"
    )
    proc = run_python(code, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_a_corrupt_model_is_a_one_line_error(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"not a flatbuffer" * 10)
    proc = invoke("bench", bad, "--runs", "2", "--warmup", "0", "--batch-sizes", "1", "--threads", "1")
    assert_one_line_error(proc, "model.tflite", code=2)
    assert not (tmp_path / "bench.json").exists()  # nothing half-written


def _row(name, mode, p50, backend="litert", precision="float32", **extra):
    return {"name": name, "mode": mode, "backend": backend, "precision": precision, "batch_size": 1, "threads": 1,
            "latency_s": {"p50": p50}, **extra}


def test_ratios_use_the_alternating_measurements():
    rows = [_row("tflite", "predictor", 9e-5, paired_p50_s={"predictor": 1.1e-4, "raw": 1e-4, "prepare": 5e-6}),
            _row("tflite", "raw", 5e-5),  # another process, a quieter moment: not used for the overhead
            _row("tflite-int8", "predictor", 4e-5, precision="int8"),
            _row("keras", "keras.predict", 0.05, backend="keras"), _row("keras", "keras.call", 0.005, backend="keras")]
    ratios = lib.compute_ratios(rows)
    assert ratios["predictor_overhead:tflite"]["value"] == pytest.approx(1.1)
    assert ratios["int8_vs_fp32:litert"]["value"] == pytest.approx(4 / 9)  # no side-by-side pair: the rows
    assert ratios["int8_vs_fp32:litert"]["method"] == "each in its own process"
    assert ratios["keras_predict_vs_fastest"]["value"] == pytest.approx(0.05 / 4e-5)
    assert ratios["keras_call_vs_fastest"]["b"]["name"] == "tflite-int8"
    pair = {"backend": "litert", "names": ("tflite-int8", "tflite"), "batch_size": 1, "threads": 1,
            "paired_p50_s": [3e-5, 1e-4], "runs": 100}
    ratios = lib.compute_ratios(rows, [pair])
    assert ratios["int8_vs_fp32:litert"]["value"] == pytest.approx(0.3)
    assert ratios["int8_vs_fp32:litert"]["method"].startswith("alternating blocks")


def test_int8_and_float32_exports_are_timed_side_by_side(tiny_bundle, tiny_data, tmp_path):
    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))  # bench writes bench.json there
    report = lib.bench([bundle / "model_fp32.tflite", bundle / "model_int8.tflite"], batch_sizes=(1,), threads=(1,),
                       runs=40, warmup=2, progress=False, data=tiny_data)
    ratio = report.ratios["int8_vs_fp32:litert"]
    assert ratio["method"].startswith("alternating blocks") and ratio["value"] > 0
    assert (ratio["a"]["name"], ratio["b"]["name"]) == ("tflite-int8", "tflite")


def test_the_int8_pair_of_a_runtime_is_found_beside_its_ort_copies(tiny_bundle):
    """onnxruntime runs .onnx and .ort: two int8 and two float32 files must still give the .onnx pair."""
    from edgecnn.bench.run import quantization_pairs
    from edgecnn.bench.targets import find_targets

    found, _ = find_targets([tiny_bundle], include_keras=False)
    assert {t.path.suffix for t in found} >= {".onnx", ".ort", ".tflite"}
    pairs = {backend: (int8.name, base.name) for backend, int8, base in quantization_pairs(found)}
    assert pairs == {"litert": ("tflite-int8", "tflite"), "onnxruntime": ("onnx-int8", "onnx")}


def test_the_benchmark_script_cold_starts_and_profiles_a_bundle(tiny_bundle, monkeypatch):
    """bench/run_benchmarks.py's own measurements, on the tiny bundle (the tests never run the whole script)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "bench" / "run_benchmarks.py"
    spec = importlib.util.spec_from_file_location("run_benchmarks_under_test", path)
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, script)  # its dataclasses look their module up there
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, "COLD_MODELS", ("model_int8.tflite",))  # the .keras cold start takes ~9 s
    cold = script.cold_start(tiny_bundle, 1)
    assert set(cold) == {"--version", "model_int8.tflite"} and all(c["median_s"] > 0 for c in cold.values())
    nodes = script.onnx_node_profile(tiny_bundle / "model_fp32.onnx", runs=3)
    assert {op for op, _, _ in nodes} >= {"Conv"} and all(us >= 0 for _, _, us in nodes)
