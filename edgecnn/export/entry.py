"""manifest.json sections written by the exporters: the source model, the reference and one entry per export."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..fileio import sha256_file
from ..versions import cpu_class, package_versions, utc_now

if TYPE_CHECKING:
    from . import ExportFormat
    from ..convert.source import ExportSource

VERSION_PACKAGES = ("edgecnn", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert")


def model_section(source: ExportSource, folder: Path) -> dict[str, Any]:
    """The Keras file the exports come from, relative to the bundle folder when it can be."""
    return {"file": os.path.relpath(source.model_path.resolve(), folder.resolve()), "sha256": source.sha256,
            "input_shape": list(source.input_shape), "classes": source.classes}


def export_entry(fmt: ExportFormat, path: Path, source: ExportSource, details: dict, seconds: float) -> dict[str, Any]:
    """Everything a runtime, a verifier or a person needs to know about one exported file.

    ``path`` is the file as written (possibly still under its temporary name);
    ``details`` are the exporter's own fields: tensors, opset, quantization, calibration.
    """
    return {
        "file": fmt.file,
        "format": fmt.name,
        "runtime": fmt.runtime,
        "precision": fmt.precision,
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        **details,
        "source_sha256": source.sha256,
        "created": utc_now(),
        "versions": package_versions(VERSION_PACKAGES),
        "class_names": source.class_names,
        "preprocessing": source.preprocessing,
        "seconds": round(seconds, 2),
        "exported_on": cpu_class(),  # int8 layer choices are timed here (see edgecnn.versions.INT8_DOT_FLAGS)
    }


def set_model(manifest: dict, source: ExportSource, folder: Path, reference: dict | None,
              data: dict | None) -> None:
    """Top-level fields; a reference computed from another model is dropped rather than left to mislead."""
    manifest["model"] = model_section(source, folder)
    manifest["class_names"] = source.class_names
    manifest["preprocessing"] = source.preprocessing
    if data is not None:
        manifest["data"] = data
    else:
        manifest.pop("data", None)
    if reference is not None:
        manifest["reference"] = reference
    elif (manifest.get("reference") or {}).get("model_sha256") != source.sha256:
        manifest.pop("reference", None)


def stale_exports(manifest: dict, source: ExportSource) -> list[str]:
    """Entries made from a different Keras file than the current one."""
    return sorted(name for name, entry in manifest.get("exports", {}).items()
                  if entry.get("source_sha256") != source.sha256)
