"""The bundle folder: its file names, its manifest (schema-checked) and its result files.

A bundle is what a user ships: the Keras model, its exports, a manifest that says
what each file is (format, precision, tensors, sha256, provenance) and the
results of verify and bench.
"""
from __future__ import annotations

from .files import (ARCHITECTURE_FILE, BENCH_FILE, DEFAULT_RELATIVE, HISTORY_FILE, MANIFEST_FILE, METRICS_FILE,
                    MODEL_FILE, PIPELINE_FILE, REFERENCE_LABELS_FILE, REFERENCE_PROBS_FILE, REPORT_FILE, SUMMARY_FILE,
                    TRAINING_FILE, VERIFY_FILE, default_bundle)
from .manifest import MANIFEST_SCHEMA, load_manifest, load_manifest_or_empty, read_manifest, update_manifest
from .schema import BenchFile, ExportRecord, Manifest, SchemaError, VerifyFile

__all__ = ["ARCHITECTURE_FILE", "BENCH_FILE", "BenchFile", "ExportRecord", "Manifest", "SchemaError", "VerifyFile",
           "load_manifest", "DEFAULT_RELATIVE", "HISTORY_FILE", "MANIFEST_FILE", "MANIFEST_SCHEMA",
           "METRICS_FILE", "MODEL_FILE", "PIPELINE_FILE", "REFERENCE_LABELS_FILE", "REFERENCE_PROBS_FILE",
           "REPORT_FILE", "SUMMARY_FILE", "TRAINING_FILE", "VERIFY_FILE", "default_bundle", "load_manifest_or_empty",
           "read_manifest", "update_manifest"]
