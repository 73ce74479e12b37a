"""Concurrency and load: one Predictor shared by 8 threads, and concurrent manifest writers.

Each backend runs in a fresh process (no TensorFlow in it for ONNX and TFLite),
so its resident memory is the Predictor's own and a leak of a few hundred bytes
per call would show against the 10% bound.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgecnn.export import FORMATS
from edgecnn.runtime import BACKENDS

from .helpers import ENV_AT_START, REPO

THREADS = 8
TOTAL = 20_000
WARM = 1_000  # memory is measured after the first WARM predictions and after all TOTAL

# Runs in a child process: python -c LOAD_TEST <model> <batch> <total> <threads>
LOAD_TEST = r"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from edgecnn.runtime import Predictor

path, batch, total, threads, warm = sys.argv[1], *map(int, sys.argv[2:6])
calls, warm_calls = total // batch, warm // batch
pool_size = 256
images = np.random.default_rng(0).integers(0, 256, (pool_size * batch, 28, 28), dtype=np.uint8)
chunks = [images[i * batch:(i + 1) * batch] for i in range(pool_size)]
predictor = Predictor.load(path, threads=1)
expected = [predictor.predict(chunk) for chunk in chunks]  # sequential, one call per chunk

def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

def work(calls_range):
    bad = 0
    for i in calls_range:
        out = predictor.predict(chunks[i % pool_size])
        bad += not np.array_equal(out, expected[i % pool_size])
    return bad

executor = ThreadPoolExecutor(threads)  # the same 8 threads for the whole run

def run(first, last):
    # each thread takes every THREADS-th call, so all threads are busy for the whole range
    return sum(executor.map(work, [range(first + t, last, threads) for t in range(threads)]))

started = time.perf_counter()
mismatches = run(0, warm_calls)
rss_warm = rss_kb()
samples = []
for start in range(warm_calls, calls, (calls - warm_calls) // 4 or 1):
    mismatches += run(start, min(calls, start + (calls - warm_calls) // 4 or 1))
    samples.append(rss_kb())
seconds = time.perf_counter() - started
executor.shutdown()
print(json.dumps({"mismatches": mismatches, "predictions": calls * batch, "calls": calls,
                  "rss_warm_kb": rss_warm, "rss_end_kb": samples[-1], "rss_samples_kb": samples, "seconds": seconds,
                  "backend": predictor.backend, "precision": predictor.precision}))
"""


# Every runtime of the registry with float32 and with int8 tensors (the Predictor's two conversion paths; fp16
# and dynamic-range files take float tensors like float32), each with 20,000 batch-1 calls; Keras, where one
# call costs ~1 ms of TensorFlow overhead, gets the same 20,000 images in batches of 10 (2,000 calls).
CASES = [(fmt.file, 1) for fmt in FORMATS.values() if fmt.precision in ("float32", "int8")] + [("model.keras", 10)]


def test_every_runtime_is_loaded_by_eight_threads():
    """A runtime added to BACKENDS (and an export format for it) is load-tested too."""
    assert {Path(file).suffix for file, _ in CASES} == set(BACKENDS)


@pytest.mark.parametrize("file, batch", CASES, ids=[f for f, _ in CASES])
def test_shared_predictor_under_8_threads(tiny_bundle, file, batch):
    proc = subprocess.run([sys.executable, "-c", LOAD_TEST, str(tiny_bundle / file), str(batch), str(TOTAL),
                           str(THREADS), str(WARM)], cwd=REPO, env=ENV_AT_START, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{file}: {result}")
    assert result["predictions"] == TOTAL
    assert result["mismatches"] == 0, f"{result['mismatches']} of {result['calls']} calls differ from sequential calls"
    growth = result["rss_end_kb"] / result["rss_warm_kb"] - 1
    assert growth <= 0.10, f"resident memory grew {100 * growth:.1f}% after the first {WARM} predictions: {result}"


CHURN_TEST = r"""
import json, sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from edgecnn.runtime import Predictor

predictor = Predictor.load(sys.argv[1], threads=1)
x = np.random.default_rng(0).integers(0, 256, (1, 28, 28), dtype=np.uint8)
expected = predictor.predict(x)

def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

samples, bad = [], 0
for round in range(40):  # 40 short-lived pools of 8 threads: 320 threads, each with its own LiteRT interpreter
    with ThreadPoolExecutor(8) as ex:
        bad += sum(ex.map(lambda _: sum(not np.array_equal(predictor.predict(x), expected) for _ in range(25)),
                          range(8)))
    samples.append(rss_kb())
print(json.dumps({"mismatches": bad, "rss_kb": samples}))
"""


def test_threads_that_come_and_go_do_not_leak(tiny_bundle):
    """LiteRT keeps one interpreter per thread: interpreters of finished threads must be freed."""
    proc = subprocess.run([sys.executable, "-c", CHURN_TEST, str(tiny_bundle / "model_int8.tflite")], cwd=REPO,
                          env=ENV_AT_START, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["mismatches"] == 0
    after_10, after_40 = result["rss_kb"][9], result["rss_kb"][-1]
    assert after_40 <= 1.10 * after_10, f"RSS grew from {after_10} to {after_40} kB over 30 rounds of new threads"


# ------------------------------------------------------------- manifest writers

WRITER = r"""
import sys
from edgecnn.bundle.manifest import update_manifest
folder, who, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    update_manifest(folder, lambda m, key=f"{who}-{i}": m.setdefault("notes", {}).update({key: i}))
"""


def test_concurrent_manifest_updates_lose_nothing(tmp_path):
    """4 processes x 25 read-modify-writes of one manifest: all 100 changes are there, no temp file left."""
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"p{n}", "25"], cwd=REPO,
                              stderr=subprocess.PIPE, text=True) for n in range(4)]
    for proc in procs:
        assert proc.wait(120) == 0, proc.stderr.read()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert len(manifest["notes"]) == 100
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".edgecnn-tmp-")] == []
