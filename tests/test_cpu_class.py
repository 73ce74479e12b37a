"""An int8 file is chosen and proven on one CPU and runs on others: the manifest records the class of CPU it was
timed (``exported_on``) and verified on (``verify.passed_on``), and predict and bench say in one line when this
CPU is of another class (other int8 dot-product instructions), with the command that settles it here."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgecnn.versions import INT8_DOT_FLAGS, cpu_class, same_int8_class

#: A CPU unlike any machine: another architecture, no int8 dot product.
ELSEWHERE = {"cpu": "Some Other CPU", "arch": "riscv64", "int8_dot": []}
#: A verify stamp made there.
VERIFIED_ELSEWHERE = {"passed": True, "verified_at": "2026-12-01T00:00:00Z", "verified_on": ELSEWHERE,
                      "passed_on": [ELSEWHERE]}


def _bundle(tiny_bundle: Path, tmp_path: Path, change) -> Path:
    folder = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest["exports"]["tflite-int8"])
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_export_and_verify_record_the_cpu_class(tiny_bundle, tmp_path):
    from edgecnn.verify import verify

    folder = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    verify([folder / "model_int8.tflite"], progress=False)
    entry = json.loads((folder / "manifest.json").read_text())["exports"]["tflite-int8"]
    here = cpu_class()
    assert entry["exported_on"] == here and set(here["int8_dot"]) <= set(INT8_DOT_FLAGS)
    assert entry["verify"]["verified_on"] == here
    assert entry["verify"]["passed_on"] == ([here] if entry["verify"]["passed"] else [])


def test_passed_on_keeps_one_record_per_class_and_only_passes():
    from edgecnn.bundle.cpu import passed_on

    here = cpu_class()
    assert passed_on([], here, True) == [here]
    assert passed_on([here], {**here, "cpu": "the same class, another model"}, True) == [here]
    assert passed_on([ELSEWHERE], here, False) == [ELSEWHERE]
    assert passed_on([ELSEWHERE], here, True) == [ELSEWHERE, here]


def test_a_file_of_this_class_gets_no_note(tiny_bundle):
    from edgecnn.runtime import Predictor

    assert not [n for n in Predictor.load(tiny_bundle / "model_int8.tflite").notes if "CPU" in n]


@pytest.mark.parametrize("where", ["exported_on", "passed_on"])
def test_another_class_of_cpu_is_named_with_the_command(tiny_bundle, tmp_path, where):
    from edgecnn.runtime import Predictor

    def elsewhere(entry):
        if where == "exported_on":
            entry["exported_on"] = ELSEWHERE
            entry["layers"][0]["float32_s"] = entry["layers"][0]["float32_s"] or 1e-5  # its layers were timed
        else:
            entry["verify"] = VERIFIED_ELSEWHERE

    folder = _bundle(tiny_bundle, tmp_path, elsewhere)
    notes = [n for n in Predictor.load(folder / "model_int8.tflite").notes if "Some Other CPU" in n]
    assert len(notes) == 1 and "\n" not in notes[0], notes
    command = f"edgecnn export --model {folder / 'model.keras'} --out {folder}" if where == "exported_on" \
        else f"edgecnn verify {folder}"
    assert command in notes[0] and "riscv64; int8 dot product: none" in notes[0]
    assert not [n for n in Predictor.load(folder / "model_fp32.tflite").notes if "Some Other CPU" in n]


def test_bench_names_the_other_class_too(tiny_bundle, tmp_path):
    from edgecnn.bench.targets import find_targets

    folder = _bundle(tiny_bundle, tmp_path, lambda entry: entry.update(verify=VERIFIED_ELSEWHERE))
    _, notes = find_targets([folder], include_keras=False)
    assert [n for n in notes if n.startswith("model_int8.tflite passed verify on Some Other CPU")]


def test_int8_classes_differ_by_dot_product_and_architecture():
    x86 = {"arch": "x86_64", "int8_dot": ["avx512_vnni"]}
    assert same_int8_class(x86, {"arch": "x86_64", "int8_dot": ["avx512_vnni"], "cpu": "another model"})
    assert not same_int8_class(x86, {"arch": "x86_64", "int8_dot": []})
    assert not same_int8_class(x86, {"arch": "aarch64", "int8_dot": ["avx512_vnni"]})
