"""Mobile compatibility checks: per export in verify's output, verify.json and the report; the Flex-op gate."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgecnn.bundle import read_manifest, update_manifest
from edgecnn.fileio import sha256_file
from edgecnn.verify import format_report, verify
from edgecnn.verify.compat import check_compatibility


@pytest.fixture(scope="module")
def flex_tflite(tmp_path_factory) -> Path:
    """A 28x28x1 -> 10 classifier whose graph needs a TensorFlow Select (Flex) op: MatrixInverse."""
    from edgecnn import tfquiet

    tf = tfquiet.tensorflow()

    @tf.function(input_signature=[tf.TensorSpec([1, 28, 28, 1], tf.float32, name="input")])
    def serve(x):
        y = tf.reshape(x, [1, 784])[:, :10]
        return tf.nn.softmax(tf.linalg.inv(tf.eye(10) + tf.transpose(y) @ y)[:1])

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], serve)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    with tfquiet.quiet(stdout=True):
        content = converter.convert()
    path = tmp_path_factory.mktemp("flex") / "flex.tflite"
    path.write_bytes(content)
    return path


def test_flex_ops_are_found_and_fail_the_gate(flex_tflite, tiny_bundle, tiny_data, tmp_path):
    compat = check_compatibility(flex_tflite)
    assert compat.details["flex_ops"] == ["FlexMatrixInverse"] and not compat.details["builtin_only"]
    assert compat.details["xnnpack"]["checked"] is False
    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "b"))
    shutil.copyfile(flex_tflite, bundle / "model_fp32.tflite")  # its sha256 recorded: not tampered, just Flex
    update_manifest(bundle, lambda m: m["exports"]["tflite"].update(sha256=sha256_file(bundle / "model_fp32.tflite")))
    report = verify([bundle / "model_fp32.tflite", bundle / "model_fp16.tflite"], data=tiny_data, progress=False)
    rows = {r.key: r for r in report.rows}
    assert not rows["tflite"].passed and rows["tflite-fp16"].passed
    assert any("Flex" in f and "FlexMatrixInverse" in f for f in rows["tflite"].failures), rows["tflite"].failures
    assert "NOT only builtin" in format_report(report)


def test_every_export_has_a_summary_in_verify_output_json_and_report(tiny_bundle, tiny_data, tmp_path):
    from edgecnn.render.report import write_report

    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "b"))
    report = verify([bundle], data=tiny_data, progress=False)
    text = format_report(report)
    keys = list(read_manifest(bundle)["exports"])
    block = text.split("mobile compatibility:\n", 1)[1]
    for key in keys:
        assert f"  {key}: " in block, key
    saved = json.loads((bundle / "verify.json").read_text())["exports"]
    for key in keys:
        compat = saved[key]["compatibility"]
        assert compat["summary"] and compat["failures"] == [], key
    tflite = saved["tflite"]["compatibility"]
    assert tflite["builtin_only"] and tflite["flex_ops"] == [] and "CONV_2D" in tflite["ops"]
    assert tflite["xnnpack"]["checked"] and 0 < tflite["xnnpack"]["delegated_nodes"] <= tflite["xnnpack"]["nodes"]
    assert tflite["gpu"]["checked"] and tflite["gpu"]["summary"]
    partitions = saved["onnx"]["compatibility"]["partitions"]
    assert set(partitions) == {"NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram"}
    assert all(p["fixed_shape_suitability"] in ("YES", "MAYBE", "NO") for p in partitions.values())
    html = write_report(bundle).read_text()
    assert "Mobile compatibility" in html and "XNNPACK" in html and "NNAPI" in html
