"""ONNX exports (float32 via tf2onnx, int8 via onnxruntime static quantization; see :mod:`edgecnn.convert.onnx`).

The cached graphs carry no metadata: each file gets its own model card when it is written.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..convert.onnx import QUANTIZATION, float32_model, prepare, quantize_prepared
from ..model_card import card_metadata

if TYPE_CHECKING:
    from ..convert.source import ExportSource


def export_float32(source: ExportSource, path: Path, card: dict) -> dict:
    import onnx

    onnx.save(with_card(float32_model(source), card, source), str(path))
    return describe(path)


def export_int8(source: ExportSource, path: Path, card: dict) -> dict:
    """Static int8, with the nodes mixed precision keeps float when the source sets an accuracy budget."""
    import onnx

    model, float_nodes = int8_model(source), source.cache["onnx-int8-float-nodes"]
    onnx.save(with_card(model, card, source), str(path))
    details = {**describe(path), "quantization": {**QUANTIZATION, "float_nodes": float_nodes},
               "calibration": source.calibration_info()}
    choice = source.cache.get("onnx-int8-choice")
    if choice is not None:
        return {**details, **choice.manifest_fields(source.validation_source()),
                **({"note": choice.note()} if choice.note() else {})}
    return details


def int8_model(source: ExportSource):
    """Static quantization of the float32 graph (after onnxruntime's pre-processing), input/output stay float32.

    With an accuracy budget and labelled validation images, the nodes kept float
    are chosen by measurement (:func:`edgecnn.quantize.choose_onnx_int8`: each
    layer's error and its own float32 and int8 latency); else only the float
    stem is, by the rule measured on x86 (:func:`edgecnn.convert.onnx.apply_float_stem`). Cached like the float32 graph: the ORT-format int8
    export converts this same graph.
    """
    if "onnx-int8" not in source.cache:
        import onnx

        if source.max_accuracy_drop is not None:
            from ..quantize import choose_onnx_int8

            # diagnose=False: each layer alone is measured only when the budget needs the search
            choice = choose_onnx_int8(source, source.max_accuracy_drop, measure_latency=source.measure_latency,
                                      diagnose=False, on_progress=source.on_progress)
            model, float_nodes = onnx.load_from_string(choice.model), choice.float_nodes
            source.cache["onnx-int8-choice"] = choice
        else:
            with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as work:
                prepared, float_nodes = prepare(source, Path(work))
                model = quantize_prepared(source, prepared, Path(work) / "int8.onnx", float_nodes)
        source.cache["onnx-int8"], source.cache["onnx-int8-float-nodes"] = model, float_nodes
    return source.cache["onnx-int8"]


def describe(path: Path) -> dict:
    """Graph inputs and outputs (a named or unknown dimension becomes ``None``) and the opset."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    model = onnx.load(str(path), load_external_data=False)

    def tensor(value) -> dict:
        kind = value.type.tensor_type
        return {"name": value.name,
                "shape": [d.dim_value if d.HasField("dim_value") else None for d in kind.shape.dim],
                "dtype": np.dtype(tensor_dtype_to_np_dtype(kind.elem_type)).name,
                "quantization": None}

    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return {"inputs": [tensor(v) for v in model.graph.input], "outputs": [tensor(v) for v in model.graph.output],
            "opset": int(opset)}


def with_card(model, card: dict, source: ExportSource):
    """A copy of ``model`` whose metadata_props hold its model card, for runtimes that get only the file."""
    import onnx
    from onnx.helper import set_model_props

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    set_model_props(copy, {**card_metadata(card), "source_sha256": source.sha256})
    return copy


