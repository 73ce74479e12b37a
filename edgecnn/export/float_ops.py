"""What a TFLite file converted with the float fallback keeps in float, read back from the file itself.

The strict int16x8 conversion refuses some ops (HARD_SWISH in MobileNetV3); the
fallback conversion then keeps them float, and these functions say which ops,
in which Keras layers, and why, so a partly float file is never passed off as
int16x8.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np


#: The quantizer's refusals in strict int16x8 mode (TFLite's quantize_model.cc): pattern -> reason template.
_REFUSALS = {
    r"Quantization to 16x8-bit not yet supported for op: '(\w+)'": "the converter cannot quantize {op} to 16x8",
    r"Quantization not yet supported for op: '(\w+)'": "the converter cannot quantize {op} at all",
}
#: Ops that only convert between the float and the int16 tensors (the file's interface, and around float ops).
_CONVERSION_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})


def refused_ops(exc: BaseException) -> dict[str, str]:
    """Op name -> reason, from the converter's error (it names only the first op it refuses); empty: not a refusal."""
    refused: dict[str, str] = {}
    for pattern, reason in _REFUSALS.items():
        for op in re.findall(pattern, str(exc)):
            refused.setdefault(op, reason.format(op=op))
    return refused


def float_ops(path: Path, refused: dict[str, str], keras_names: set[str]) -> list[dict]:
    """The ops of the written file that compute in float32 (any float32 operand or result), grouped by op.

    Read from the file itself rather than assumed from the error: the converter names
    only the first op it refuses, and the fallback may keep others float too.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path),  # no delegate: list the file's own ops, not XNNPACK's partitions
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    grouped: dict[str, list[str]] = {}
    for op in interpreter._get_ops_details():  # noqa: SLF001 (LiteRT's only op listing)
        types = [np.dtype(t) for t in (*op["operand_types"], *op["result_types"])]
        if op["op_name"] in _CONVERSION_OPS or np.dtype(np.float32) not in types:
            continue
        outputs = [names[i] for i in op["outputs"] if i >= 0 and i in names]
        grouped.setdefault(op["op_name"], []).append(_layer_of(outputs[0], keras_names) if outputs else "")
    return [{"op": op, "count": len(layers), "precision": "float32",
             "layers": sorted({name for name in layers if name}),
             "reason": refused.get(op, f"the converter's float fallback kept {op} float (no 16x8 quantization "
                                       "for it; the strict conversion stopped at the first op it refused)")}
            for op, layers in grouped.items()]


def _layer_of(tensor: str, keras_names: set[str]) -> str:
    """The Keras layer a graph tensor comes from: the innermost scope of its first name that names a layer.

    Traced scopes may carry a uniquifying suffix (``MobileNetV3Small_1/activation_1_2/mul`` is the layer
    ``activation_1`` of the model ``MobileNetV3Small``), so ``activation_1`` alone is ambiguous: when the
    root scope is suffixed, every scope is read without its suffix first. The innermost scope as it is
    when no layer matches.
    """
    scopes = tensor.split(";")[0].split("/")[:-1]
    if not scopes:
        return tensor

    def bare(scope: str) -> str:
        return re.sub(r"_\d+$", "", scope)

    suffixed = scopes[0] not in keras_names and bare(scopes[0]) in keras_names
    for scope in reversed(scopes):
        for name in ((bare(scope), scope) if suffixed else (scope, bare(scope))):
            if name in keras_names:
                return name
    return scopes[-1]


def float_ops_note(float_ops: list[dict], refused: dict[str, str]) -> str:
    """One line for the manifest entry: which ops run float inside the int16x8 file, and why."""
    if not float_ops:
        return (f"converted with float fallback after the converter refused {', '.join(refused)} in 16x8, "
                "yet no op runs in float: every op int16x8")
    kept = "; ".join(f"{entry['op']} x{entry['count']} ({entry['reason']})" for entry in float_ops)
    return f"not every op int16x8: kept float32 inside the file: {kept} (see float_ops)"
