"""`edgecnn verify`: metrics, gates, and the command on real exports (passing, wrong, tampered, no TensorFlow)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgecnn.bundle.manifest import update_manifest
from edgecnn.export import FORMATS
from edgecnn.fileio import sha256_file
from edgecnn.metrics import accuracy, compare_probs, confusion_matrix, per_class_accuracy, top1
from edgecnn.verify import GATES, Thresholds, thresholds_for, verify

from .conftest import make_idx_dataset, needs_real_data, require_real_data
from .helpers import TENSORFLOW, assert_one_line_error, invoke, run_cli, without

# ----------------------------------------------------------------------------- metrics and gates (synthetic)


def test_metrics_on_known_arrays():
    labels = np.array([0, 1, 2, 2, 1])
    predicted = np.array([0, 2, 2, 2, 1])
    assert accuracy(predicted, labels) == pytest.approx(0.8)
    matrix = confusion_matrix(labels, predicted, 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 2]]
    assert per_class_accuracy(matrix) == [1.0, 0.5, 1.0]
    assert per_class_accuracy(confusion_matrix(np.array([0]), np.array([0]), 2)) == [1.0, None]
    with pytest.raises(ValueError):
        confusion_matrix(labels, predicted, 2)


def test_compare_probs_counts_flips_and_diffs():
    rng = np.random.default_rng(0)
    ref = rng.dirichlet(np.ones(10), size=1000).astype(np.float32)
    other = ref.copy()
    other[[3, 500]] = other[[3, 500]][:, ::-1]  # reversed rows: top-1 changes (ties are improbable)
    c = compare_probs(ref, other)
    assert c.flipped == 2 and c.flipped_indices.tolist() == [3, 500]
    assert c.agreement == pytest.approx(0.998)
    assert c.max_abs_diff == pytest.approx(np.abs(ref - other).max(), rel=1e-6)
    assert c.mean_abs_diff == pytest.approx(np.abs(ref - other).mean(), rel=1e-5)
    same = compare_probs(ref, ref)
    assert (same.flipped, same.agreement, same.max_abs_diff) == (0, 1.0, 0.0)
    assert top1(ref).shape == (1000,)
    with pytest.raises(ValueError):
        compare_probs(ref, ref[:10])


def test_gated_agreement_leaves_out_near_ties_only():
    """A flip where the reference's top-1 leads by less than NEAR_TIE_MARGIN is reported, not gated; a flip of a
    confident image counts (so a wrong export still fails)."""
    from edgecnn.metrics import NEAR_TIE_MARGIN

    ref = np.array([[0.52, 0.48], [0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    near_tie_flipped = ref.copy()
    near_tie_flipped[0] = [0.49, 0.51]
    c = compare_probs(ref, near_tie_flipped)
    assert ref[0, 0] - ref[0, 1] < NEAR_TIE_MARGIN
    assert (c.agreement, c.confident_agreement, c.near_tie_flips) == (0.75, 1.0, 1)
    confident_flipped = near_tie_flipped.copy()
    confident_flipped[1] = [0.1, 0.9]
    c = compare_probs(ref, confident_flipped)
    assert (c.agreement, c.confident_agreement, c.near_tie_flips) == (0.5, pytest.approx(2 / 3), 1)
    assert thresholds_for("int8").check(max_abs_diff=0.8, agreement=c.confident_agreement,
                                        accuracy_delta_points=0.0)[0].startswith("agreement 66.67% < 98.5%")


@pytest.mark.parametrize("precision, diff, agreement, delta, failed", [
    ("float32", 1e-4, 0.999, -5.0, []),
    ("float32", 1.1e-4, 1.0, 0.0, ["max abs diff"]),
    ("fp32", 0.0, 0.9989, 0.0, ["agreement"]),
    ("float16", 1e-2, 0.995, 0.0, []),
    ("fp16", 0.02, 0.994, 0.0, ["max abs diff", "agreement"]),
    ("dynamic", 0.9, 0.985, -1.0, []),
    ("dynamic", 0.0, 0.984, 0.0, ["agreement"]),
    ("int8", 0.5, 0.99, -1.01, ["accuracy drop"]),
    ("int8", 0.5, 0.99, +3.0, []),
    ("int16x8", 0.5, 0.995, -0.3, []),
    ("int16x8", 0.5, 0.994, -0.31, ["agreement", "accuracy drop"]),
])
def test_default_gates(precision, diff, agreement, delta, failed):
    messages = thresholds_for(precision).check(max_abs_diff=diff, agreement=agreement, accuracy_delta_points=delta)
    assert [m.split(" ")[0] for m in messages] == [f.split(" ")[0] for f in failed], messages
    for message, name in zip(messages, failed):
        assert message.startswith(name)


def test_overrides_replace_defaults_and_nan_fails():
    assert GATES["int8"].atol is None
    gate = thresholds_for("int8", atol=0.1, min_agreement=90, max_accuracy_drop=5)
    assert gate == Thresholds(atol=0.1, min_agreement_pct=90, max_accuracy_drop_points=5)
    assert gate.check(max_abs_diff=0.2, agreement=0.95, accuracy_delta_points=-4) == ["max abs diff 0.2 > 0.1"]
    assert thresholds_for("float32", min_agreement=99.0).atol == 1e-4
    assert thresholds_for("float32").check(max_abs_diff=float("nan"), agreement=1.0, accuracy_delta_points=0.0)



# ----------------------------------------------------------------------------- bad input (no trained model needed)

def fake_bundle(folder: Path, *, probs: bool = True) -> Path:
    """A manifest listing one export, enough to get past target resolution."""
    folder.mkdir(parents=True)
    (folder / "model_fp32.onnx").write_bytes(b"not run")
    entry = {"file": "model_fp32.onnx", "sha256": "0" * 64, "format": "onnx", "precision": "float32"}
    (folder / "manifest.json").write_text(json.dumps({"schema": 1, "exports": {"onnx": entry}}))
    if probs:
        np.save(folder / "reference_probs.npy", np.full((50, 10), 0.1, np.float32))
    return folder


@pytest.mark.parametrize("case, needles", [
    ("missing folder", ["nope", "not found"]),
    ("empty folder", ["no manifest.json"]),
    ("empty --data-dir", ["holds no images"]),
    ("missing --reference", ["missing.keras", "not found"]),
    ("no reference at all", ["no reference", "reference_probs.npy not found"]),
    ("bad --min-agreement", ["--min-agreement", "0..100"]),
])
def test_bad_input_is_one_line_exit_2(tmp_path, case, needles):
    data = ["--data-dir", make_idx_dataset(tmp_path / "idx")]
    bundle = fake_bundle(tmp_path / "b", probs=case != "no reference at all")
    args = {
        "missing folder": [tmp_path / "nope"],
        "empty folder": [tmp_path / "idx" / "empty"],
        "empty --data-dir": [bundle, "--data-dir", tmp_path],
        "missing --reference": [bundle, *data, "--reference", tmp_path / "missing.keras"],
        "no reference at all": [bundle, *data],
        "bad --min-agreement": [bundle, "--min-agreement", "120"],
    }[case]
    (tmp_path / "idx" / "empty").mkdir()
    assert_one_line_error(invoke("verify", *args), *needles, code=2)


def test_test_set_not_found_via_environment_is_one_line_exit_2(tmp_path, monkeypatch):
    monkeypatch.setattr("edgecnn.datasets.fashion_mnist.SYSTEM_DIR", Path("/nonexistent/fashion-mnist"))
    proc = invoke("verify", fake_bundle(tmp_path / "b"), env={"EDGECNN_DATA_DIR": str(tmp_path / "empty")})
    assert_one_line_error(proc, "$EDGECNN_DATA_DIR", str(tmp_path / "empty"), "does not hold", code=2)


# ----------------------------------------------------------------------------- real exports of tiny models


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A fully exported bundle ("good"), another seed's exports ("other") and a perturbed copy ("perturbed")."""
    from edgecnn.export import export_model
    from edgecnn.model import load_model, save_model
    from edgecnn.train import TrainConfig, train

    require_real_data()
    root = tmp_path_factory.mktemp("verify")
    good = train(TrainConfig(out=root / "good", limit=3000, epochs=2)).model_path
    export_model(good)
    other = train(TrainConfig(out=root / "other", limit=3000, epochs=2, seed=7)).model_path
    export_model(other, formats=("tflite-int8", "tflite-int16x8", "onnx"))
    model = load_model(good)
    rng = np.random.default_rng(0)
    model.set_weights([w * (1 + 0.01 * rng.standard_normal(w.shape)) for w in model.get_weights()])  # 1% noise
    export_model(save_model(model, root / "perturbed" / "model.keras"), formats=("onnx",))
    return root


def copy_bundle(exported: Path, name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(exported / name, tmp_path / name))


def swap_in(bundle: Path, key: str, replacement: Path) -> Path:
    """Replace an export's file and record the new file's sha256, so only its numbers can fail."""
    target = bundle / json.loads((bundle / "manifest.json").read_text())["exports"][key]["file"]
    shutil.copyfile(replacement, target)
    update_manifest(bundle, lambda m: m["exports"][key].update(sha256=sha256_file(target)))
    return target


def table_rows(stdout: str) -> dict[str, str]:
    """The result table's rows, by export format."""
    return {line.split()[0]: line for line in stdout.splitlines() if line.split()[:1] and line.split()[0] in FORMATS}


@needs_real_data
def test_correct_bundle_passes_and_results_are_stored(exported, tmp_path):
    bundle = copy_bundle(exported, "good", tmp_path)
    proc = run_cli("verify", bundle, "--json", tmp_path / "all.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"reference: Keras model {bundle / 'model.keras'}")
    rows = table_rows(proc.stdout)
    assert len(rows) == len(FORMATS) and all(row.endswith("PASS") for row in rows.values()), proc.stdout
    assert "cross-runtime tflite vs onnx: agreement 100.00%" in proc.stdout
    assert lines[-1].startswith(f"PASS: all {len(FORMATS)} exports") and str(bundle / "verify.json") in lines[-1]
    assert not any(noise in proc.stderr for noise in ("oneDNN", "absl", "Traceback", "WARNING"))

    saved = json.loads((bundle / "verify.json").read_text())
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert saved["passed"] and saved["reference"]["kind"] == "keras"
    assert saved["reference"]["accuracy"] == pytest.approx(manifest["reference"]["keras_accuracy"])
    for key, result in saved["exports"].items():
        matrix = np.array(result["confusion_matrix"])
        assert result["images"] == matrix.sum() == 10_000 and matrix.shape == (10, 10)
        assert result["accuracy"] == pytest.approx(np.trace(matrix) / 10_000)
        assert result["flipped"] == len(result["flipped_indices"]) == round((1 - result["agreement"]) * 10_000)
        assert len(result["disagreements"]) == min(result["flipped"], 100) and result["passed"]
        assert manifest["exports"][key]["verify"]["passed"] is True
    assert saved["exports"]["onnx"]["max_abs_diff"] <= 1e-4 and saved["exports"]["tflite"]["thresholds"]["atol"] == 1e-4
    everything = json.loads((tmp_path / "all.json").read_text())
    assert everything["passed"] and everything["bundles"][0]["exports"] == saved["exports"]


@needs_real_data
@pytest.mark.parametrize("case", ["weights perturbed", "another seed's model", "another seed's int16x8",
                                  "a file from another bundle"])
def test_gate_fails_on_a_wrong_export(exported, tmp_path, case):
    bundle = copy_bundle(exported, "good", tmp_path)
    if case == "weights perturbed":  # 1% multiplicative noise on every weight: the float32 gate catches it
        args, key, why = [swap_in(bundle, "onnx", exported / "perturbed" / "model_fp32.onnx")], "onnx", "max abs diff"
    elif case == "another seed's model":  # even the loosest gate (int8) catches a different training run
        swapped = swap_in(bundle, "tflite-int8", exported / "other" / "model_int8.tflite")
        args, key, why = [swapped], "tflite-int8", "agreement"
    elif case == "another seed's int16x8":  # the int16x8 gate is its own, and it fails a wrong file too
        swapped = swap_in(bundle, "tflite-int16x8", exported / "other" / "model_int16x8.tflite")
        args, key, why = [swapped], "tflite-int16x8", "agreement"
    else:  # an export of another bundle, verified against this bundle's model
        other = copy_bundle(exported, "other", tmp_path)
        args, key, why = [other / "model_fp32.onnx", "--reference", bundle / "model.keras"], "onnx", "agreement"
    proc = invoke("verify", *args)  # in-process: TensorFlow is already imported here
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert table_rows(proc.stdout)[key].endswith("FAIL")
    assert f"  {key}: " in proc.stdout and why in proc.stdout and "tampered" not in proc.stdout
    assert proc.stdout.splitlines()[-1].startswith(f"FAIL: 1 of 1 exports failed ({key})")


@needs_real_data
def test_tampered_and_broken_files_fail_and_the_others_still_run(exported, tmp_path):
    bundle = copy_bundle(exported, "good", tmp_path)
    update_manifest(bundle, lambda m: m["exports"]["onnx"].update(sha256="0" * 64))
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"x" * 99)
    swap_in(bundle, "tflite-fp16", garbage)  # its sha256 recorded: not tampered, just not a model
    proc = invoke("verify", bundle / "model_fp32.onnx", bundle / "model_fp16.tflite", bundle / "model_fp32.tflite")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = table_rows(proc.stdout)
    assert rows["onnx"].endswith("FAIL") and rows["tflite-fp16"].endswith("FAIL") and rows["tflite"].endswith("PASS")
    assert "  onnx: tampered: sha256 of model_fp32.onnx" in proc.stdout
    assert "  tflite-fp16: cannot run model_fp16.tflite" in proc.stdout
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["exports"]["onnx"]["verify"]["passed"] is False
    assert manifest["exports"]["tflite"]["verify"]["passed"] is True


@needs_real_data
def test_without_tensorflow_verifies_from_saved_reference_probs(exported, tmp_path):
    bundle = copy_bundle(exported, "good", tmp_path)
    no_tf = without(tmp_path, TENSORFLOW)
    proc = run_cli("verify", bundle, env=no_tf)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"reference: {bundle / 'reference_probs.npy'} saved at export time "
                                  "(TensorFlow not installed)")
    assert len(table_rows(proc.stdout)) == len(FORMATS)
    assert proc.stdout.splitlines()[-1].startswith(f"PASS: all {len(FORMATS)}")
    assert "  tflite: GPU delegate: not checked: needs TensorFlow" in proc.stdout  # the other mobile checks ran
    assert "  tflite: XNNPACK: " in proc.stdout and "  onnx: NNAPI: " in proc.stdout
    assert json.loads((bundle / "verify.json").read_text())["reference"]["kind"] == "reference_probs.npy"

    assert_one_line_error(run_cli("verify", bundle, "--reference", bundle / "model.keras", env=no_tf),
                          "--reference", "needs TensorFlow", code=2)
    probs = np.load(bundle / "reference_probs.npy")
    np.save(bundle / "reference_probs.npy", probs[:, ::-1])
    assert_one_line_error(run_cli("verify", bundle, env=no_tf), "reference_probs.npy", "altered", code=2)
    (bundle / "reference_probs.npy").unlink()
    assert_one_line_error(run_cli("verify", bundle, env=no_tf), "no reference", "TensorFlow not installed",
                          code=2)


@needs_real_data
def test_library_overrides_and_partial_runs_keep_earlier_results(exported, tmp_path):
    bundle = copy_bundle(exported, "good", tmp_path)
    first = verify([bundle / "model_fp32.tflite", bundle / "model_fp32.onnx"], progress=False)
    assert first.passed and [r.key for r in first.rows] == ["tflite", "onnx"]
    strict = verify([bundle / "model_int8.tflite"], atol=0.0, progress=False)
    (row,) = strict.rows
    assert not strict.passed and row.thresholds.atol == 0.0 and row.failures[0].startswith("max abs diff")
    saved = json.loads((bundle / "verify.json").read_text())
    assert list(saved["exports"]) == ["tflite", "onnx", "tflite-int8"] and saved["passed"] is False
    assert saved["cross_runtime"][0]["a"] == "tflite" and saved["cross_runtime"][0]["b"] == "onnx"
    assert strict.to_dict()["bundles"][0]["exports"]["tflite-int8"]["passed"] is False

    loose = tmp_path / "loose" / "renamed.tflite"  # no manifest: precision comes from the file itself
    loose.parent.mkdir()
    shutil.copyfile(bundle / "model_fp32.tflite", loose)
    (row,) = verify([loose], reference=bundle / "model.keras", progress=False).rows
    assert row.passed and row.key == "renamed.tflite" and row.thresholds == GATES["float32"]
    assert not (loose.parent / "verify.json").exists()
