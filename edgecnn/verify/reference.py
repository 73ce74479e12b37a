"""What an export is compared with: the Keras model, or the probabilities saved at export time.

The Keras model is the reference when TensorFlow can be imported; otherwise the
exporter's ``reference_probs.npy``, so a device with only the base install can
verify the files it was shipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bundle.files import MODEL_FILE, REFERENCE_LABELS_FILE, REFERENCE_PROBS_FILE
from ..bundle.schema import Manifest, ReferenceSection
from ..errors import EdgecnnError, MissingExtraError
from ..fileio import read_npy, sha256_file


@dataclass
class Reference:
    kind: str  # "keras" or "reference_probs.npy"
    path: Path
    why: str  # said in the output: which reference and why
    manifest_reference: ReferenceSection | None = None  # the exporter's "reference" section (sha256 of the .npy files)
    probs: np.ndarray | None = None


def find_reference(folder: Path, manifest: Manifest | None, explicit: Path | None) -> Reference:
    """Choose the reference cheaply (no inference yet); one-line error when there is none."""
    if explicit is not None:
        if not explicit.is_file():
            raise EdgecnnError(f"reference model {explicit} not found")
        if not _tensorflow_importable():
            raise MissingExtraError(f"--reference {explicit} needs TensorFlow, which is not installed; "
                                    f"without it verify uses {REFERENCE_PROBS_FILE} from the bundle")
        return Reference("keras", explicit, f"Keras model {explicit}")
    keras_path = folder / (manifest.model.file if manifest and manifest.model else MODEL_FILE)
    probs_path = folder / REFERENCE_PROBS_FILE
    if keras_path.is_file() and _tensorflow_importable():
        return Reference("keras", keras_path, f"Keras model {keras_path}")
    reason = "TensorFlow not installed" if keras_path.is_file() else f"{keras_path} not found"
    if probs_path.is_file():
        return Reference(REFERENCE_PROBS_FILE, probs_path, f"{probs_path} saved at export time ({reason})",
                         manifest.reference if manifest else None)
    raise EdgecnnError(f"no reference to verify {folder} against: {reason} and {probs_path} not found")


def _tensorflow_importable() -> bool:
    from .. import tfquiet

    try:
        tfquiet.tensorflow()
    except MissingExtraError:
        return False
    return True


def load_saved_probs(ref: Reference, labels: np.ndarray) -> np.ndarray:
    """The saved reference probabilities, checked against the test set in use."""
    recorded = ref.manifest_reference.probs_sha256 if ref.manifest_reference else None
    if recorded and sha256_file(ref.path) != recorded:
        raise EdgecnnError(f"{ref.path} does not match the sha256 in its manifest: the reference itself was altered")
    probs = read_npy(ref.path)
    if probs.ndim != 2 or len(probs) != len(labels) or not np.issubdtype(probs.dtype, np.floating):
        raise EdgecnnError(f"{ref.path} holds {probs.dtype} {probs.shape}, expected float probabilities "
                           f"(N, classes) for the {len(labels)} test images in use")
    saved_labels = ref.path.parent / REFERENCE_LABELS_FILE
    if saved_labels.is_file() and not np.array_equal(read_npy(saved_labels), labels):
        raise EdgecnnError(f"{saved_labels} does not match the test labels in use: "
                           f"{ref.path.name} was computed on another test set")
    return probs.astype(np.float32, copy=False)
