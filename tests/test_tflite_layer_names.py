"""The int8 layers' names (``edgecnn explain``'s rows, the manifest's ``layers``) are the Keras layers', in both formats.

TFLite named its layers after the model's top-level weighted layers only when
their count was that of the weighted ops, else after a tensor name: a Keras
applications model (its BatchNormalizations have weights but fold into the
convolutions) and a user's wrapper (``Input -> Rescaling -> MobileNetV2``, the
network one nested layer) got ``block_1_expand_relu_1`` and ``batchnorm`` rows.
Both formats now share :mod:`edgecnn.quantize.keras_names`, so the same model's
layers are named alike in TFLite and ONNX.
"""
from __future__ import annotations

import numpy as np
import pytest

from .architectures import ARCHITECTURES, build
from .test_architectures import write_data

#: The reference CNN (top-level layers), and a Keras applications model (BatchNorm folded) nested in the user's
#: wrapper.
MODELS = ("reference-cnn", "nested-wrapper")


@pytest.fixture(scope="module", params=MODELS)
def named(request, tmp_path_factory) -> dict:
    """One model: its Keras kernel layers in order, the rows ONNX names its nodes after, and the TFLite and ONNX
    layer names of its int8 search."""
    from edgecnn.export import load_source
    from edgecnn.model import all_layers
    from edgecnn.quantize.keras_names import keras_layers
    from edgecnn.quantize.onnx_layers import CalibratedONNX
    from edgecnn.quantize.tflite_layers import CalibratedTFLite

    name, folder = request.param, tmp_path_factory.mktemp(request.param)
    model = build(name)
    model.save(folder / "model.keras")
    data = write_data(folder / "data.npz", ARCHITECTURES[name].input_shape)
    classes = model.outputs[0].shape[-1]
    with np.load(data) as saved:
        arrays = dict(saved)
    np.savez(data, **{**arrays, "class_names": np.array([f"class{i}" for i in range(classes)])})  # reference CNN: 10
    source, _ = load_source(folder / "model.keras", data, calibrated=True, calibration_samples=8)
    held_out = source.calibration()[:4]
    return {"name": name, "kernels": [layer.name for layer in all_layers(source.model) if hasattr(layer, "kernel")],
            "rows": [row for row, _ in keras_layers(source.model)[0]],
            "tflite": [layer.name for layer in CalibratedTFLite(source, held_out).layers],
            "onnx": [layer.name for layer in CalibratedONNX(source, held_out).layers]}


def test_tflite_layers_are_the_keras_kernel_layers_in_graph_order(named):
    name, tflite = named["name"], named["tflite"]
    assert tflite == named["kernels"] == named["rows"], name
    if name == "reference-cnn":
        assert tflite == ["conv2d", "conv2d_1", "dense", "dense_1"]  # the graph's conv2d_1 is the layer conv2d
    else:  # BatchNorm folded, nested or not: each convolution by its own name, none by its BN's or activation's
        assert tflite[:4] == ["Conv1", "expanded_conv_depthwise", "expanded_conv_project", "block_1_expand"]
        assert tflite[-2:] == ["Conv_1", "predictions"] and len(tflite) == 53


def test_onnx_and_tflite_name_the_same_models_layers_alike(named):
    assert named["onnx"] == named["tflite"], named["name"]


def test_fused_tflite_names_are_matched_to_keras_layers_when_the_order_or_count_differs():
    """Graph order other than the layers' (``conv2d_1_2`` is the layer ``conv2d_1``, ``conv2d_1`` the layer
    ``conv2d``), and ops no Keras layer explains: those keep their graph name, made unique by position."""
    from edgecnn.quantize.keras_names import layer_names, scopes

    outputs = ["net_1/conv2d_1_2/Relu;net_1/conv2d_1_2/convolution;;net_1/pad_1/Pad",
               "net_1/conv2d_1/Relu;net_1/bn_1/FusedBatchNormV3;net_1/conv2d_1/convolution",
               "net_1/extra_1/MatMul", "net_1/extra_1/MatMul1", "tfl.pseudo"]
    rows = [("conv2d", "conv2d"), ("conv2d_1", "conv2d_1")]
    names = layer_names([scopes([o]) for o in outputs], [o.split(";")[0] for o in outputs],
                        ["CONV_2D", "CONV_2D", "FULLY_CONNECTED", "FULLY_CONNECTED", "FULLY_CONNECTED"], rows, {"net"})
    assert names == ["conv2d_1", "conv2d", "extra_1#2", "extra_1#3", "fully_connected_4"]

