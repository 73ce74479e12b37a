"""TFLite per-layer latency for any graph: each layer's ops cut out of the file itself and timed alone.

It was measured for Sequential models only (each block converted again on its
own), so every Keras applications model had null latency fields and no layer
was ever kept float for speed. A cut is only a timing of the layer if it computes
what the layer computes inside the whole file: that is held here on graphs with
residual adds and squeeze-and-excitation gates (a cut with two activation inputs),
nested in a user's wrapper or not.
"""
from __future__ import annotations

import numpy as np
import pytest

from .architectures import ARCHITECTURES, build
from .test_architectures import write_data

#: A nested MobileNetV2 (residual adds), MobileNetV3Small (hard-swish, squeeze-and-excitation) and the reference.
MODELS = ("nested-wrapper", "mobilenet-v3-small", "reference-cnn")


@pytest.fixture(scope="module", params=MODELS)
def calibrated(request, tmp_path_factory):
    from edgecnn.export import load_source
    from edgecnn.quantize.tflite_layers import CalibratedTFLite

    name, folder = request.param, tmp_path_factory.mktemp(request.param)
    model = build(name)
    model.save(folder / "model.keras")
    data = write_data(folder / "data.npz", ARCHITECTURES[name].input_shape)
    with np.load(data) as saved:
        arrays = dict(saved)
    classes = model.outputs[0].shape[-1]  # the reference CNN has 10
    np.savez(data, **{**arrays, "class_names": np.array([f"class{i}" for i in range(classes)])})
    source, _ = load_source(folder / "model.keras", data, calibrated=True, calibration_samples=8)
    return name, CalibratedTFLite(source, source.calibration()[:4]), source.calibration()[0]


def _run(cut) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=cut.model, num_threads=1)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), cut.feeds):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return [interpreter.get_tensor(detail["index"]) for detail in interpreter.get_output_details()]


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_each_cut_computes_what_its_layer_computes_inside_the_whole_file(calibrated, precision):
    from edgecnn.quantize.tflite_cut import TFLiteCutter

    name, model, image = calibrated
    cutter = TFLiteCutter(model.quantize(model.layers if precision == "float32" else ()), image)
    several_inputs = 0
    for layer in model.layers:
        cut = cutter.cut(layer.nodes)
        assert cut.ops.split(" + ")[0] == layer.op, layer.name
        several_inputs += len(cut.feeds) > 1
        outputs = _run(cut)
        assert len(outputs) == len(cut.outputs) >= 1, layer.name
        for got, whole in zip(outputs, cut.outputs):
            assert got.shape == whole.shape and got.dtype == whole.dtype, layer.name
            if precision == "float32":
                np.testing.assert_allclose(got, whole, rtol=1e-4, atol=1e-4, err_msg=layer.name)
            else:  # XNNPACK's int8 kernels against the reference ones: at most one step apart
                assert np.abs(got.astype(np.int32) - whole.astype(np.int32)).max() <= 1, layer.name
    if name != "reference-cnn":  # residual adds, SE gates: cuts fed two activations
        assert several_inputs > 0, name


def test_every_layer_is_timed_in_both_precisions(calibrated):
    _, model, image = calibrated
    timed = model.layer_latencies(image[None], runs=20)
    assert len(timed) == len(model.layers)
    for layer, latency in zip(model.layers, timed):
        assert latency.layers.split(" + ")[0] == layer.op and latency.input_shape == layer.input_shape
        assert latency.float32_s > 0 and latency.int8_s > 0, layer.name


def test_a_tensor_no_op_produces_is_refused(calibrated):
    from edgecnn.quantize.tflite_cut import TFLiteCutter

    _, model, image = calibrated
    with pytest.raises(ValueError, match="no op of this file produces"):
        TFLiteCutter(model.quantize(()), image).cut(["not-a-tensor"])


def test_every_layer_float_leaves_no_int8_op_after_the_first_layer(calibrated):
    """The quantizer renames the last op's output (``...:01``); the denylist must use the calibrated name, or the
    last layer's softmax, and the logits before it, stayed int8 whatever the choice (MobileNetV3Small with every
    layer float agreed with float on 98.65% of its validation images)."""
    from ai_edge_litert.interpreter import Interpreter

    name, model, _ = calibrated
    interpreter = Interpreter(model_content=model.quantize(model.layers))
    dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # noqa: SLF001
    first = next(i for i, op in enumerate(ops) if op["op_name"] == model.layers[0].op)
    int8_after = [op["op_name"] for op in ops[first:] if any(dtypes[i] == np.int8 for i in op["outputs"])]
    assert int8_after == [], name
