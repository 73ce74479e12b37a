"""ONNX int8 that holds on every x86 CPU class: the same file gives the same outputs with and without VNNI.

x86 CPUs without an int8 dot product (AVX2; AVX-512 without VNNI) multiply
uint8 activations by int8 weights in pairs summed into int16, which saturates
with full-range weights; VNNI does not. The default recipe (``reduce_range``:
7-bit weights) must therefore give the same outputs on both classes, which is
shown by running the file under QEMU's Haswell (AVX2, no VNNI) beside this CPU;
the full-range file, on a depthwise model, must not (the gate's failure side).
QEMU's user-mode emulation is slow, so this is e2e.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .helpers import REPO
from edgecnn.versions import cpu_class

HASWELL = ["qemu-x86_64", "-cpu", "Haswell"]
RUN = r"""
import json, sys, numpy as np, onnxruntime as ort
x = np.load(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out[path] = session.run(None, {session.get_inputs()[0].name: x})[0].tolist()
print(json.dumps(out))
"""

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("qemu-x86_64") is None,
                                                  reason="qemu-user is not installed (make setup installs it)")]


def _outputs(prefix: list[str], images: Path, files: list[Path]) -> dict[str, np.ndarray]:
    proc = subprocess.run([*prefix, sys.executable, "-c", RUN, str(images), *map(str, files)], capture_output=True,
                          text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {Path(k).name: np.asarray(v) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def _depthwise_model():
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = keras.Input((16, 16, 3))
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(16, 3, padding="same", activation="relu6")(x)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = layers.Conv2D(32, 1, activation="relu6")(x)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = layers.GlobalAveragePooling2D()(x)
    head = layers.Dense(4, activation="softmax")
    model = keras.Model(inputs, head(x))
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 40, bias])  # confident, varied outputs: an error inside shows at the output
    return model


def test_the_default_onnx_int8_gives_the_same_outputs_with_and_without_vnni(tmp_path, monkeypatch):
    from edgecnn.convert import onnx as onnx_convert
    from edgecnn.export import export_model
    from edgecnn.model import save_model

    model = save_model(_depthwise_model(), tmp_path / "dw.keras")
    rng = np.random.default_rng(0)
    npz = tmp_path / "images.npz"
    np.savez(npz, x=rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8))
    files = {}
    for reduce_range in (True, False):
        monkeypatch.setitem(onnx_convert.QUANTIZATION, "reduce_range", reduce_range)
        out = tmp_path / f"reduce-{reduce_range}"
        result = export_model(model, ("onnx-int8",), out, data=npz, calibration_samples=32, max_accuracy_drop=None)
        assert result.failed == {}
        files[reduce_range] = shutil.copy(out / "model_int8.onnx", tmp_path / f"int8-reduce-{reduce_range}.onnx")
    images = tmp_path / "x.npy"
    np.save(images, rng.integers(0, 256, (32, 16, 16, 3)).astype(np.float32))
    here, haswell = (_outputs(prefix, images, list(files.values())) for prefix in ([], HASWELL))
    held, full = Path(files[True]).name, Path(files[False]).name
    assert np.abs(here[held] - haswell[held]).max() < 1e-5  # the default: one file, the same outputs
    if cpu_class()["int8_dot"]:  # full-range weights saturate without VNNI, so only a VNNI host shows it
        assert np.abs(here[full] - haswell[full]).max() > 1e-3
    else:  # this host has no int8 dot product either: both run the Haswell kernels
        assert np.abs(here[full] - haswell[full]).max() < 1e-5
