"""Every file name a bundle folder can hold, and where the default bundle lives.

One home for the names, so a command that reads a file and the command that
writes it can never disagree, and no module imports another one for a constant.
"""
from __future__ import annotations

from pathlib import Path

MODEL_FILE = "model.keras"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
SUMMARY_FILE = "summary.txt"
ARCHITECTURE_FILE = "architecture.png"
TRAINING_FILE = "training.png"
REFERENCE_PROBS_FILE = "reference_probs.npy"
REFERENCE_LABELS_FILE = "reference_labels.npy"
VERIFY_FILE = "verify.json"
BENCH_FILE = "bench.json"
REPORT_FILE = "report.html"
PIPELINE_FILE = "pipeline.json"
REQUIRED_OPERATORS_FILE = "required_operators.config"
#: Optional compact copy of the test images (uint8 ``x_test``, labels ``y_test``), for bundles of the user's own data.
TEST_SET_FILE = "test_set.npz"
MANIFEST_LOCK_FILE = ".manifest.lock"
PIPELINE_LOCK_FILE = ".pipeline.lock"
DEFAULT_RELATIVE = Path("models") / "fashion-cnn"


def default_bundle() -> Path:
    """``models/fashion-cnn`` in the current folder, else the one shipped beside the package."""
    local = Path.cwd() / DEFAULT_RELATIVE
    if local.exists():
        return DEFAULT_RELATIVE
    shipped = Path(__file__).resolve().parent.parent.parent / DEFAULT_RELATIVE
    return shipped if shipped.exists() else DEFAULT_RELATIVE
