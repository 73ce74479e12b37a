"""Will an export run on a phone, a GPU delegate or an NPU? Checked from the file, before any device sees it.

TFLite: only builtin operators (a Flex / SELECT_TF_OPS or custom op fails the
gate: LiteRT without the Flex delegate cannot run it), the operator list, how
much of the graph XNNPACK takes, and TensorFlow's GPU-delegate analyzer.
ONNX: the partitions NNAPI and CoreML would take, from onnxruntime's mobile
usability checker (``onnxruntime.tools.check_onnx_model_mobile_usability``).
"""
from __future__ import annotations

import contextlib
import io
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import tfquiet
from ..errors import MissingExtraError, require
from ..runtime.xnnpack import xnnpack_coverage

_BUILTIN = re.compile(r"^[A-Z0-9_]+$")  # LiteRT builtin operator names; custom ones are CamelCase
NEEDS_TF = "not checked: needs TensorFlow (pip install edgecnn[train])"
NEEDS_ONNX = "not checked: needs the onnx package (pip install edgecnn[train])"
#: onnxruntime's checker lost its pre-built-package operator list; said so rather than guessed.
PREBUILT = ("not checked: this onnxruntime's usability checker has no pre-built package operator list; "
            "the onnx-ort export and required_operators.config make a reduced build that runs it")


@dataclass
class Compatibility:
    """What one file needs from a device runtime: lines for people, details for verify.json, gate failures."""

    summary: list[str]
    details: dict[str, Any]
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, **self.details, "failures": self.failures}


def check_compatibility(path: Path) -> Compatibility | None:
    """The checks of the file's kind; None for a kind without any (.keras) or a file its runtime cannot read."""
    check = CHECKS.get(path.suffix.lower())
    return check(path) if check else None


# --------------------------------------------------------------------------- TFLite


def tflite_compatibility(path: Path) -> Compatibility | None:
    from ai_edge_litert.interpreter import Interpreter

    try:
        ops = [d["op_name"] for d in Interpreter(model_path=str(path))._get_ops_details()]
    except ValueError:  # not a TFLite file: running it fails with LiteRT's own reason
        return None
    custom = sorted({op for op in ops if not _BUILTIN.match(op)})
    flex = [op for op in custom if op.startswith("Flex")]
    failures = []
    if flex:
        failures.append(f"needs TensorFlow Select (Flex) ops {', '.join(flex)}: builtin LiteRT cannot run it "
                        "(re-export without SELECT_TF_OPS)")
    if set(custom) - set(flex):
        failures.append(f"needs custom ops {', '.join(sorted(set(custom) - set(flex)))}: not builtin LiteRT ops")
    xnnpack = xnnpack_coverage(path) if not custom else {"checked": False, "why": "the graph has non-builtin ops"}
    gpu = _gpu(path)
    summary = [f"ops: {'only builtin' if not custom else 'NOT only builtin'} ({', '.join(sorted(set(ops)))})",
               "XNNPACK: " + (("whole graph" if xnnpack["whole_graph"] else
                               f"{xnnpack['delegated_nodes']}/{xnnpack['nodes']} nodes in {_partitions_word(xnnpack['partitions'])}; "
                               f"on the CPU: {', '.join(xnnpack['not_delegated'])}")
                              if xnnpack["checked"] else f"not checked: {xnnpack['why']}"),
               "GPU delegate: " + gpu["summary"]]
    return Compatibility(summary, {"ops": sorted(set(ops)), "builtin_only": not custom, "flex_ops": flex,
                                   "xnnpack": xnnpack, "gpu": gpu}, failures)


def _gpu(path: Path) -> dict[str, Any]:
    """tf.lite.experimental.Analyzer's GPU-delegate verdict, summarised (needs TensorFlow)."""
    try:
        tf = tfquiet.tensorflow()
    except MissingExtraError:  # the deploy install has no TensorFlow: the other checks still run
        return {"checked": False, "summary": NEEDS_TF}
    text = io.StringIO()
    with tfquiet.quiet(), contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_path=str(path), gpu_compatibility=True)
    warnings = sorted({line.split("GPU COMPATIBILITY WARNING:", 1)[1].strip()
                       for line in text.getvalue().splitlines() if "GPU COMPATIBILITY WARNING:" in line})
    compatible = "looks compatible with GPU delegate" in text.getvalue() and not warnings
    summary = "compatible (TFLite analyzer)" if compatible else f"not compatible: {'; '.join(warnings) or 'see the analyzer'}"
    return {"checked": True, "compatible": compatible, "warnings": warnings, "summary": summary}


# --------------------------------------------------------------------------- ONNX


def onnx_compatibility(path: Path) -> Compatibility | None:
    """NNAPI and CoreML partitions as onnxruntime's mobile usability checker computes them."""
    try:
        onnx = require("onnx", feature="the NNAPI/CoreML check")
    except MissingExtraError:
        return Compatibility([f"NNAPI/CoreML: {NEEDS_ONNX}"], {"checked": False})
    from onnxruntime.tools.mobile_helpers import usability_checker as checker
    from onnxruntime.tools.onnx_model_utils import ModelProtoWithShapeInfo, optimize_model

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception:  # onnx raises DecodeError and others for a non-ONNX file: running it names the problem
        return None
    eps: dict[str, Callable[[Any, bool], Any]] = {
        "NNAPI": checker.check_nnapi_partitions,
        "CoreML NeuralNetwork": lambda m, fixed: checker.check_coreml_partitions(
            m, fixed, "coreml_supported_neuralnetwork_ops.md"),
        "CoreML MLProgram": lambda m, fixed: checker.check_coreml_partitions(m, fixed, "coreml_supported_mlprogram_ops.md"),
    }
    with tempfile.TemporaryDirectory(prefix="edgecnn-mobile-") as work, tfquiet.quiet():
        optimized = Path(work) / "basic.onnx"  # the checker's own first step: the BASIC optimizations ORT applies
        optimize_model(path, optimized, use_external_initializers=True)
        model = ModelProtoWithShapeInfo(optimized).model_with_shape_info
        details = {name: _partitions(check, model) for name, check in eps.items()}
    ops = sorted({n.op_type for n in model.graph.node})
    summary = [f"{name}: {d['supported_nodes']}/{d['nodes']} nodes in {_partitions_word(d['partitions'])}, "
               f"worth trying: {d['suitability']}" + (f" (with a fixed batch: {d['fixed_shape_suitability']})"
                                                     if d["fixed_shape_suitability"] != d["suitability"] else "")
               + (f"; unsupported: {', '.join(d['unsupported_ops'])}" if d["unsupported_ops"] else "")
               for name, d in details.items()]
    summary.append(f"pre-built ORT Mobile package: {PREBUILT}")
    return Compatibility(summary, {"ops": ops, "partitions": details})


def _partitions_word(count: int) -> str:
    return f"{count} partition{'' if count == 1 else 's'}"


def _partitions(check: Callable[[Any, bool], Any], model) -> dict[str, Any]:
    info, fixed = check(model, True), check(model, False)
    return {"nodes": info.num_nodes, "supported_nodes": info.num_supported_nodes, "partitions": info.num_partitions,
            "unsupported_ops": sorted(info.unsupported_ops), "suitability": info.suitability().name,
            "fixed_shape_suitability": fixed.suitability().name}


def ort_compatibility(path: Path) -> Compatibility:
    """An .ort file is ONNX Runtime Mobile's own format; NNAPI/CoreML coverage is that of its ONNX source."""
    return Compatibility(["ORT format: loads in ONNX Runtime Mobile; NNAPI/CoreML partitions as its .onnx source; "
                          "a reduced build needs the operators in required_operators.config"],
                         {"ort_format": True})


#: Model file extension -> its compatibility check.
CHECKS: dict[str, Callable[[Path], Compatibility | None]] = {
    ".tflite": tflite_compatibility, ".onnx": onnx_compatibility, ".ort": ort_compatibility}
