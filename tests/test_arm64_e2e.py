"""verify --arch arm64 for real: the exports run under QEMU on the runtimes' aarch64 wheels (e2e: minutes).

The environment is built once per machine (about a minute, downloads on the
first run) in the user cache, as `edgecnn arm64 setup` builds it.
"""
from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgecnn.bundle.manifest import load_manifest
from edgecnn.errors import EdgecnnError

from .helpers import REPO, invoke

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def _emulation_here():
    from edgecnn.arm64 import check_host

    try:
        check_host()
    except EdgecnnError as exc:
        pytest.skip(f"no arm64 emulation here: {exc}")


def test_the_reference_bundle_holds_on_arm(tmp_path):
    bundle = tmp_path / "fashion-cnn"
    shutil.copytree(REPO / "models" / "fashion-cnn", bundle)
    before = {key: e.verify.passed_on for key, e in load_manifest(bundle).exports.items()}
    proc = invoke("verify", str(bundle), "--arch", "arm64", "--cpu", "cortex-a76", "--images", "600")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no times" in proc.stdout and "9 exports and 9 ARM runs" in proc.stdout
    rows = [row for row in json.loads((bundle / "verify.json").read_text())["arm64"] if row["cpu"] == "cortex-a76"]
    manifest = load_manifest(bundle)
    assert sorted(row["export"] for row in rows) == sorted(manifest.exports)
    for row in rows:
        assert row["passed"] and row["images"] == 600 and not row["full_test_set"], row
        assert row["cpu_class"] == {"cpu": "cortex-a76 (emulated)", "arch": "aarch64", "int8_dot": ["asimddp"]}
        assert row["versions"]["onnxruntime"] == manifest.exports[row["export"]].versions["onnxruntime"]
        assert row["x86"]["agreement"] >= 0.99, row
    # a subset is not a verification on that core (the x86 run, on the whole test set, may add this machine's)
    def arm(passed: dict) -> dict:
        return {key: [cls for cls in classes if cls["arch"] == "aarch64"] for key, classes in passed.items()}

    assert arm({key: e.verify.passed_on for key, e in manifest.exports.items()}) == arm(before)


def _negated_weights(source: Path, target: Path) -> None:
    """The ONNX file with its largest weight negated: what a wrong ARM build of the file would compute."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    largest = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    largest.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(largest), largest.name))
    onnx.save(model, str(target))


def test_the_arm_gate_fails_when_the_file_run_on_arm_differs(tiny_bundle, tmp_path, monkeypatch):
    from edgecnn.verify import run as verify_run, verify

    bundle = tmp_path / "tiny"
    shutil.copytree(tiny_bundle, bundle)
    monkeypatch.setattr(verify_run, "verify_on_arm",
                        functools.partial(verify_run.verify_on_arm, stage=_negated_weights))
    report = verify([bundle / "model_fp32.onnx"], arch="arm64", cpus=["cortex-a53"], progress=False)
    (x86,), (arm,) = report.rows, report.bundles[0].arm
    assert x86.passed and not arm.passed and not report.passed
    assert arm.versus_x86.agreement < 0.9 and arm.failures[0].startswith("on cortex-a53: max abs diff")
    assert not json.loads((bundle / "verify.json").read_text())["passed"]
    stamp = load_manifest(bundle).exports["onnx"].verify
    assert [rec["arch"] for rec in stamp.passed_on] == ["x86_64"]


def test_a_pass_on_the_whole_test_set_counts_as_verified_on_that_core(tiny_bundle, tmp_path):
    bundle = tmp_path / "tiny"
    shutil.copytree(tiny_bundle, bundle)
    proc = invoke("verify", str(bundle / "model_int8.tflite"), "--arch", "arm64", "--cpu", "cortex-a53")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row, = json.loads((bundle / "verify.json").read_text())["arm64"]
    assert row["full_test_set"] and row["images"] == 300 and row["x86"]["agreement"] >= 0.99
    stamp = load_manifest(bundle).exports["tflite-int8"].verify
    assert {"cpu": "cortex-a53 (emulated)", "arch": "aarch64", "int8_dot": []} in stamp.passed_on
