"""Every architecture of the registry (``architectures.py``) through every format of ``FORMATS``, then verify.

One bundle per architecture is exported once (every format, every layer int8:
the per-layer search is tested in ``test_mixed_precision.py``) and verified on
its test images against the Keras model; the tests read those shared results.
float32 files must meet their gate (within 1e-4 of Keras); the float16 and
quantized files' agreement is measured and must beat chance by far: on
untrained models, whose outputs are full of near-ties and whose activations no
training has bounded, their gates mean little (the e2e tests train real ones). Each architecture's tier (``architectures.py``) says where it runs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecnn.export import FORMATS

from .architectures import ARCHITECTURES, CLASSES, build
from .conftest import built_once

TRAIN, TEST = 48, 40
#: The largest probability difference from Keras a float32 file may show (verify's own gate).
FLOAT32_ATOL = 1e-4
#: Other files must agree with Keras on at least this share of test images (chance is 1/4).
MIN_AGREEMENT = 0.5


_MARKS = {"fast": (), "e2e": (pytest.mark.e2e,), "slow": (pytest.mark.e2e, pytest.mark.slow)}


def _params() -> list:
    return [pytest.param(name, marks=_MARKS[arch.tier], id=name) for name, arch in ARCHITECTURES.items()]


def write_data(path: Path, input_shape: tuple[int, int, int], seed: int = 0) -> Path:
    """Random pixels in a .npz (gray models get (N, H, W)), random labels: enough to calibrate and compare."""
    rng = np.random.default_rng(seed)
    shape = input_shape if input_shape[-1] == 3 else input_shape[:-1]
    np.savez(path, x=rng.integers(0, 256, (TRAIN, *shape), dtype=np.uint8), y=rng.integers(0, CLASSES, TRAIN),
             x_test=rng.integers(0, 256, (TEST, *shape), dtype=np.uint8), y_test=rng.integers(0, CLASSES, TEST),
             class_names=np.array([f"class{i}" for i in range(CLASSES)]))
    return path


def _exported(name: str, root: Path) -> None:
    from edgecnn.export import export_model
    from edgecnn.verify import verify

    root.mkdir(parents=True, exist_ok=True)
    model = build(name)
    classes = model.outputs[0].shape[-1]
    assert classes in (CLASSES, 10)
    model.save(root / "model.keras")
    data = write_data(root / "data.npz", ARCHITECTURES[name].input_shape)
    if classes != CLASSES:  # the reference CNN keeps its 10 classes
        with np.load(data) as d:
            arrays = {k: d[k] for k in d.files}
        arrays["class_names"] = np.array([f"class{i}" for i in range(classes)])
        np.savez(data, **arrays)
    result = export_model(root / "model.keras", ("all",), root / "bundle", data=data, calibration_samples=32,
                          max_accuracy_drop=None)
    (root / "failed.json").write_text(json.dumps(result.failed), encoding="utf-8")
    verify([root / "bundle"], progress=False)


@pytest.fixture(scope="module", params=_params())
def bundle(request, tmp_path_factory) -> tuple[str, Path]:
    return request.param, built_once(tmp_path_factory, f"arch-{request.param}",
                                     lambda root: _exported(request.param, root)) / "bundle"


def test_every_format_is_written(bundle):
    from edgecnn.bundle.manifest import load_manifest

    name, folder = bundle
    failed = json.loads((folder.parent / "failed.json").read_text(encoding="utf-8"))
    cannot = ARCHITECTURES[name].cannot
    assert set(failed) == set(cannot), f"{name}: {failed}"
    for fmt, why in failed.items():
        assert cannot[fmt] in why and "\n" not in why, f"{name} {fmt}: {why}"
    manifest = load_manifest(folder)
    assert set(manifest.exports) == set(FORMATS) - set(cannot)
    for fmt in FORMATS.values():
        assert (folder / fmt.file).is_file() == (fmt.name not in cannot), f"{name}: {fmt.file}"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_export_matches_keras(bundle, fmt):
    from edgecnn.fileio import read_json

    name, folder = bundle
    if fmt in ARCHITECTURES[name].cannot:
        pytest.skip(f"{fmt} cannot serve {name} today (test_every_format_is_written holds its reason)")
    results = read_json(folder / "verify.json")["exports"]
    assert fmt in results, f"{name}: {fmt} was not verified"
    result, precision = results[fmt], FORMATS[fmt].precision
    assert result["max_abs_diff"] is not None, f"{name} {fmt}: {result['failures']}"
    gap = ARCHITECTURES[name].open_gaps.get(fmt)
    if precision == "float32":
        met = result["max_abs_diff"] <= FLOAT32_ATOL and result["passed"]
        assert not (gap and met), f"{name} {fmt} now meets its gate: remove its open gap"
        if gap:
            pytest.xfail(f"{gap} (measured {result['max_abs_diff']:.2g})")
        assert met, f"{name} {fmt}: {result['failures']}"
    else:
        if gap and result["agreement"] < MIN_AGREEMENT:  # a CPU-dependent gap: met on some machines
            pytest.xfail(f"{gap} (measured {result['agreement']:.3f})")
        assert result["agreement"] >= MIN_AGREEMENT, f"{name} {fmt}: agreement {result['agreement']}"


@pytest.mark.parametrize("fmt", [name for name, fmt in FORMATS.items() if fmt.runtime == "litert"])
def test_each_tflite_file_serves_its_signature(bundle, fmt):
    """The converter writes no signature on the path export takes (see edgecnn.convert.tflite.converter): the one
    written after must name the file's own input and output, so LiteRT's signature runner computes the same."""
    from ai_edge_litert.interpreter import Interpreter

    name, folder = bundle
    if fmt in ARCHITECTURES[name].cannot:
        pytest.skip(f"{fmt} cannot serve {name} today")
    interpreter = Interpreter(model_path=str(folder / FORMATS[fmt].file))
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["input"], "outputs": ["probabilities"]}}
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert out["name"] == "probabilities", f"{name} {fmt}"
    x = np.random.default_rng(1).integers(0, 256, (1, *inp["shape"][1:])).astype(inp["dtype"])
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    direct = interpreter.get_tensor(out["index"]).copy()
    by_signature = interpreter.get_signature_runner("serving_default")(input=x)["probabilities"]
    assert np.array_equal(by_signature, direct), f"{name} {fmt}"
