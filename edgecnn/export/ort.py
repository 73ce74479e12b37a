"""ORT-format models for ONNX Runtime Mobile, converted from the ONNX exports of the same run.

ONNX Runtime Mobile loads only the ORT (flatbuffer) format, and a reduced-size
build of it keeps only the kernels its ``required_operators.config`` lists, so
both are written: the ``.ort`` file per ONNX precision, and one config holding
the operators of every ``.ort`` file in the bundle (a phone app ships one build).
The conversion keeps the ONNX graph's metadata_props, so an ``.ort`` file carries its model card too.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bundle.files import REQUIRED_OPERATORS_FILE
from ..fileio import sha256_file, write_text
from ..convert.onnx import float32_model
from . import onnx as onnx_export

if TYPE_CHECKING:
    from .source import ExportSource

#: Graph optimizations applied at conversion, so the phone does none at load time, chosen for phones'
#: ARM CPUs (an x86 run of the file works, with the ARM-preferred kernels).
OPTIMIZATION_STYLE, TARGET_PLATFORM = "Fixed", "arm"


def export_float32(source: ExportSource, path: Path, card: dict) -> dict:
    return _convert(onnx_export.with_card(float32_model(source), card, source), path)


def export_int8(source: ExportSource, path: Path, card: dict) -> dict:
    return _convert(onnx_export.with_card(onnx_export.int8_model(source), card, source), path)


def _convert(model, path: Path) -> dict:
    """Write ``model`` (an ``onnx.ModelProto``) as ORT format to ``path``; its tensors and operators."""
    import onnx
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    from .. import tfquiet

    with tempfile.TemporaryDirectory(prefix="edgecnn-ort-") as work:
        source_file, out = Path(work) / "model.onnx", Path(work) / "out"
        onnx.save(model, str(source_file))
        with tfquiet.quiet(stdout=True):
            convert_onnx_models_to_ort(source_file, output_dir=out,
                                       optimization_styles=[getattr(OptimizationStyle, OPTIMIZATION_STYLE)],
                                       target_platform=TARGET_PLATFORM)
        path.write_bytes((out / "model.ort").read_bytes())
        operators = parse_operators((out / f"model.{REQUIRED_OPERATORS_FILE}").read_text())
        return {**onnx_export.describe(source_file), "optimization_style": OPTIMIZATION_STYLE,
                "target_platform": TARGET_PLATFORM,
                "required_operators": operators}


def parse_operators(text: str) -> dict[str, list[str]]:
    """A required_operators.config as ``{"domain;opset": [operators]}`` (comments and blank lines skipped)."""
    operators: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            domain, opset, ops = line.split(";")
            operators[f"{domain};{opset}"] = sorted(set(operators.get(f"{domain};{opset}", [])) | set(ops.split(",")))
    return operators


def record_operators_config(folder: Path, manifest: dict[str, Any]) -> None:
    """Write the config for a reduced ORT build running every ``.ort`` export of the manifest, and record it."""
    entries = {name: e for name, e in sorted(manifest.get("exports", {}).items()) if "required_operators" in e}
    merged: dict[str, set[str]] = {}
    for entry in entries.values():
        for key, ops in entry["required_operators"].items():
            merged.setdefault(key, set()).update(ops)
    lines = ["# Operators of " + ", ".join(e["file"] for e in entries.values()) +
             " (edgecnn): build ONNX Runtime with --include_ops_by_config pointing at this file"]
    lines += [f"{key};{','.join(sorted(ops))}" for key, ops in sorted(merged.items())]
    path = write_text(folder / REQUIRED_OPERATORS_FILE, "\n".join(lines) + "\n")
    manifest["required_operators"] = {"file": REQUIRED_OPERATORS_FILE, "sha256": sha256_file(path),
                                      "formats": list(entries), "operators": {k: sorted(v) for k, v in merged.items()}}
