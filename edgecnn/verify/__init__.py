"""``edgecnn verify``: prove each export is the trained model on the whole test set.

The library entry point is :func:`verify`; the gates live in :mod:`.gates`, the
choice of reference in :mod:`.reference`, the result classes and their text in
:mod:`.results`.
"""
from __future__ import annotations

from .gates import GATES, Thresholds, gate_name, thresholds_for
from .reference import Reference, find_reference
from .results import BundleReport, ExportResult, VerifyReport, format_report
from .run import verify

__all__ = ["GATES", "BundleReport", "ExportResult", "Reference", "Thresholds", "VerifyReport", "find_reference",
           "format_report", "gate_name", "thresholds_for", "verify"]
