"""verify --arch arm64 without emulating: the CPU files, the host checks, the pins, the image sample, the rows.

The runs under QEMU are in test_arm64_e2e.py (e2e).
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from edgecnn.arm64 import cpus as arm_cpus, environment
from edgecnn.arm64.cpus import DEFAULT_CPUS, MIDR, check_cpus, cpuinfo_text, write_cpu_files
from edgecnn.bundle.schema import SCHEMA_VERSIONS, VERIFY_WHAT, VerifyFile, parse
from edgecnn.errors import EdgecnnError
from edgecnn.metrics import compare_probs
from edgecnn.verify.arm import ArmResult, sample
from edgecnn.verify.results import format_arm

from .helpers import REPO, assert_one_line_error, invoke

STUDY = REPO / "bench" / "arm64.json"


def _fields(text: str) -> list[dict[str, str]]:
    blocks = [block for block in text.strip().split("\n\n") if block]
    return [dict((k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in block.splitlines()))
            for block in blocks]


def test_cpuinfo_carries_each_cores_midr_as_the_kernel_writes_it():
    a76 = _fields(cpuinfo_text("cortex-a76", 2))
    assert [p["processor"] for p in a76] == ["0", "1"]
    assert {k: a76[0][k] for k in ("CPU implementer", "CPU variant", "CPU part", "CPU revision")} == {
        "CPU implementer": "0x41", "CPU variant": "0x4", "CPU part": "0xd0b", "CPU revision": "1"}
    a53 = _fields(cpuinfo_text("cortex-a53", 1))[0]
    assert (a53["CPU part"], a53["CPU revision"]) == ("0xd03", "4")
    for cpu, midr in MIDR.items():  # every field reassembles the MIDR it came from
        f = _fields(cpuinfo_text(cpu, 1))[0]
        rebuilt = (int(f["CPU implementer"], 16) << 24 | int(f["CPU variant"], 16) << 20
                   | (midr >> 16 & 0xF) << 16 | int(f["CPU part"], 16) << 4 | int(f["CPU revision"]))
        assert rebuilt == midr, cpu


def test_cpu_files_are_plain_files_in_the_root(tmp_path):
    write_cpu_files(tmp_path, "cortex-a53", 1)
    assert _fields((tmp_path / "proc" / "cpuinfo").read_text())[0]["CPU part"] == "0xd03"
    for name in ("possible", "present", "online"):
        assert (tmp_path / "sys" / "devices" / "system" / "cpu" / name).read_text() == "0\n"
    write_cpu_files(tmp_path, "cortex-a76", 4)
    assert (tmp_path / "sys" / "devices" / "system" / "cpu" / "present").read_text() == "0-3\n"


def test_unknown_cores_are_named_with_the_known_ones():
    assert check_cpus(["max", "cortex-a53", "max"]) == ["max", "cortex-a53"]
    assert set(DEFAULT_CPUS) <= set(MIDR)
    with pytest.raises(ValueError, match="unknown ARM CPU 'cortex-z9'.*cortex-a53"):
        check_cpus(["cortex-z9"])


def test_the_cli_checks_its_arm_options_in_one_line(tmp_path):
    assert_one_line_error(invoke("verify", str(tmp_path), "--cpu", "cortex-a53"), "--arch arm64", code=2)
    assert_one_line_error(invoke("verify", str(tmp_path), "--arch", "arm64", "--cpu", "cortex-z9"),
                          "--cpu", "cortex-z9", "cortex-a76", code=2)
    assert_one_line_error(invoke("verify", str(tmp_path), "--arch", "x86"), "arm64", code=2)


def test_the_host_checks_say_what_is_missing(monkeypatch):
    monkeypatch.setattr(environment.os, "geteuid", lambda: 1000)
    with pytest.raises(EdgecnnError, match="needs root"):
        environment.check_host()
    monkeypatch.setattr(environment.os, "geteuid", lambda: 0)
    real_which = environment.shutil.which
    monkeypatch.setattr(environment.shutil, "which",
                        lambda tool: None if tool in ("debootstrap", "qemu-aarch64-static") else real_which(tool))
    with pytest.raises(EdgecnnError, match="needs debootstrap, qemu-aarch64-static: apt-get install debootstrap "
                                           "qemu-user-static$"):
        environment.check_host()


def test_the_recorded_runtime_versions_are_pinned_and_the_rest_is_this_machines(monkeypatch):
    installed = {"onnxruntime": "1.99.0", "ai-edge-litert": "9.0", "numpy": "2.0.0"}
    monkeypatch.setattr(environment.importlib.metadata, "version", lambda name: installed[name])
    assert environment.runtime_pins({"onnxruntime": "1.32.0", "ai-edge-litert": None, "tensorflow": "2.21.0"}) == {
        "ai-edge-litert": "9.0", "numpy": "2.0.0", "onnxruntime": "1.32.0"}
    assert environment.runtime_pins(None) == dict(sorted(installed.items()))


def test_the_arm_site_is_the_base_install_with_its_pins(monkeypatch):
    declared = ["numpy>=1.24", "pillow>=10", "onnxruntime>=1.17", "tensorflow>=2.16; extra == \"train\""]
    monkeypatch.setattr(environment.importlib.metadata, "requires", lambda name: declared)
    assert environment.base_requirements({"onnxruntime": "1.32.0", "numpy": "2.4.6"}) == [
        "numpy==2.4.6", "pillow>=10", "onnxruntime==1.32.0"]


def test_a_missing_aarch64_wheel_is_one_line(monkeypatch):
    output = ("ERROR: Could not find a version that satisfies the requirement onnxruntime==0.0.1 (from versions: "
              "1.32.0)\nERROR: No matching distribution found for onnxruntime==0.0.1")

    class Done:
        returncode, stdout = 1, output

    monkeypatch.setattr(environment.subprocess, "run", lambda *a, **k: Done())
    with pytest.raises(EdgecnnError) as caught:
        environment._run(["pip"], "pip install", explain=environment._pip_reason)
    assert str(caught.value) == "pip install failed: no aarch64 wheel for Python 3.11 matches onnxruntime==0.0.1"


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGECNN_ARM64_CACHE", str(tmp_path / "c"))
    assert environment.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("EDGECNN_ARM64_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert environment.cache_dir() == tmp_path / "edgecnn" / "arm64"


def test_the_image_sample_spreads_over_a_sorted_test_set():
    labels = np.repeat(np.arange(10), 100)  # a class-folder test set: sorted by class
    picked = sample(len(labels), 50)
    assert len(picked) == 50 and set(labels[picked]) == set(range(10))
    assert sample(1000, None).tolist() == list(range(1000)) == sample(1000, 5000).tolist()
    with pytest.raises(EdgecnnError, match="--images"):
        sample(10, 0)


def _row(key: str, cpu: str, ref: np.ndarray, x86: np.ndarray, arm: np.ndarray, failures=()) -> ArmResult:
    return ArmResult(key, cpu, {"cpu": f"{cpu} (emulated)", "arch": "aarch64", "int8_dot": ["asimddp"]},
                     "qemu-aarch64 version 7.2", {"onnxruntime": "1.32.0"}, "int8", list(failures), len(ref), True,
                     accuracy=0.5, accuracy_delta_points=0.0, comparison=compare_probs(ref, arm),
                     versus_x86=compare_probs(x86, arm))


def test_arm_rows_go_to_verify_json_and_the_table_without_a_time():
    ref = np.array([[0.9, 0.1], [0.52, 0.48], [0.2, 0.8]], dtype=np.float32)
    arm = np.array([[0.9, 0.1], [0.48, 0.52], [0.2, 0.8]], dtype=np.float32)  # the near tie flipped
    row = _row("onnx-int8", "cortex-a76", ref, ref, arm)
    record = row.to_dict()
    assert record["x86"]["flipped"] == 1 and record["x86"]["near_tie_flips"] == 1
    assert record["x86"]["flipped_indices"] == [1]
    assert not {"seconds", "latency_s", "images_per_s"} & set(record)  # emulated times say nothing
    verify_json = {"schema": SCHEMA_VERSIONS[VERIFY_WHAT], "created": "now", "passed": True,
                   "reference": {"kind": "keras", "accuracy": 0.5, "confusion_matrix": [[1]]},
                   "exports": {}, "arm64": [record]}
    parsed = parse(VerifyFile, json.loads(json.dumps(verify_json)), "verify.json", VERIFY_WHAT)
    assert parsed.arm64[0].x86.near_tie_flips == 1 and parsed.arm64[0].cpu_class["arch"] == "aarch64"
    text = "\n".join(format_arm([row, _row("tflite-int8", "cortex-a53", ref, ref, ref, ["on cortex-a53: x"])]))
    assert "no times" in text and "onnx-int8        cortex-a76  asimddp" in text
    assert "tflite-int8 on cortex-a53: on cortex-a53: x" in text and text.count("FAIL") == 1


def test_hwcap_bits_become_cpuinfo_flag_names(monkeypatch):
    class Getauxval:
        restype = argtypes = None

        def __call__(self, which):
            return (1 << 1 | 1 << 20) if which == 16 else 1 << 13

    monkeypatch.setattr(arm_cpus.ctypes, "CDLL", lambda name: type("libc", (), {"getauxval": Getauxval()})())
    assert arm_cpus.hwcap_flags() == ["asimd", "asimddp", "i8mm"]


def test_job_folders_of_dead_processes_are_removed(tmp_path):
    from edgecnn.arm64.run import _remove_orphans

    mine, dead, old = (tmp_path / f"edgecnn-job-{pid}-x" for pid in (os.getpid(), 2**22 + 7, "abc"))
    for folder in (mine, dead, old):
        folder.mkdir()
    _remove_orphans(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [mine.name]


@pytest.mark.skipif(not STUDY.is_file(), reason="bench/arm64.py has not been run")
def test_the_results_block_is_the_render_of_the_recorded_study():
    from edgecnn.render.arm64 import END, START, render
    from edgecnn.render.readme import block_text

    record = json.loads(STUDY.read_text(encoding="utf-8"))
    assert block_text((REPO / "bench" / "RESULTS.md").read_text(encoding="utf-8"), START, END) == render(record)
    assert {"cortex-a53", "cortex-a76", "max"} <= {row["cpu"] for case in record["cases"] for row in case["rows"]}


def test_a_qemu_that_emulates_a_core_wrong_is_refused_for_that_core(monkeypatch):
    arm_cpus.check_emulator(["cortex-a53", "cortex-a76"], (7, 2))
    arm_cpus.check_emulator(["max"], (10, 0))
    with pytest.raises(ValueError, match="QEMU 7.2 emulates 'max' wrong.*qemu-user-static 10.0 or later"):
        arm_cpus.check_emulator(["cortex-a76", "max"], (7, 2))
    monkeypatch.setattr(environment.os, "geteuid", lambda: 0)
    monkeypatch.setattr(environment.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(environment, "emulator", lambda: "qemu-aarch64 version 7.2.22 (Debian 1:7.2+dfsg-7)")
    environment.check_host(["cortex-a76"])
    with pytest.raises(EdgecnnError, match="^QEMU 7.2 emulates 'max' wrong"):
        environment.check_host(["max"])


def test_an_upgraded_emulator_replaces_the_old_one_in_the_root_and_every_core(tmp_path):
    host = tmp_path / "qemu-aarch64"
    root, core = tmp_path / "root", tmp_path / "core"
    inside = environment.QEMU_IN_ROOT.lstrip("/")
    for folder in (root, core):
        (folder / inside).parent.mkdir(parents=True)
    host.write_bytes(b"qemu 7.2")
    environment._place_emulator(host, root)
    os.link(root / inside, core / inside)  # as core_root's cp -al links it
    host.write_bytes(b"qemu 10.0")
    environment._place_emulator(host, root)
    assert (root / inside).read_bytes() == b"qemu 10.0" and (core / inside).read_bytes() == b"qemu 7.2"
    environment._link_emulator(root, core)
    assert os.path.samefile(root / inside, core / inside)
    assert sorted(p.name for p in (core / inside).parent.iterdir()) == [os.path.basename(inside)]
