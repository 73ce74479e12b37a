"""Write the self-contained web app: page, runtime, model, class names, preprocessing and sample images.

The page runs the bundle's ONNX model with onnxruntime-web (wasm backend) and
ports :func:`edgecnn.preprocess.load_image` to JavaScript (static/preprocess.js),
following the bundle's preprocessing (resize mode, input range, logits or
probabilities; older bundles' missing keys take the defaults), so a browser
classifies a file exactly as :class:`edgecnn.runtime.Predictor` does.
onnxruntime-web comes from npm (package.json at the repository root, ``npm ci``);
its files are copied in, so the folder is servable from any static host.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..bundle.files import default_bundle
from ..bundle.targets import manifest_of
from ..datasets.bundled import AlteredTestSetError, test_set_of
from ..errors import DataError, EdgecnnError
from ..fileio import atomic_path, ensure_writable_dir, write_bytes, write_json
from ..preprocess import DEFAULT_PREPROCESSING, to_pixels

#: The ONNX exports a page can run, by --model name (the manifest's format key).
WEB_MODELS = ("onnx", "onnx-int8")
#: What the wasm backend loads: the ES module, its wasm loader and the wasm binary (SIMD, threads optional).
ORT_WEB_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
STATIC_FILES = ("index.html", "app.js", "preprocess.js", "style.css")
SAMPLES = 6
ORT_WEB_ENV = "EDGECNN_ORT_WEB_DIR"


@dataclass
class WebApp:
    folder: Path
    model: str
    files: list[Path]
    samples: int

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


def find_ort_web() -> Path:
    """onnxruntime-web's dist folder: $EDGECNN_ORT_WEB_DIR, else node_modules beside package.json."""
    override = os.environ.get(ORT_WEB_ENV)
    repo = Path(__file__).resolve().parents[2]
    dist = Path(override) if override else repo / "node_modules" / "onnxruntime-web" / "dist"
    missing = [name for name in ORT_WEB_FILES if not (dist / name).is_file()]
    if missing:
        raise EdgecnnError(f"onnxruntime-web is not installed: {dist / missing[0]} not found "
                           f"(run `npm ci` in {repo}, or `make setup`; or set {ORT_WEB_ENV})")
    return dist


def build_web_app(bundle: str | os.PathLike | None = None, out: str | os.PathLike | None = None, *,
                  model: str = "onnx", data: str | os.PathLike | None = None) -> WebApp:
    """Write the page for the bundle's ``model`` export (``onnx`` or ``onnx-int8``) into ``out``."""
    folder = Path(bundle) if bundle is not None else default_bundle()
    if not folder.is_dir():
        raise EdgecnnError(f"bundle {folder} is not a folder (give a bundle folder with manifest.json)")
    if model not in WEB_MODELS:
        raise EdgecnnError(f"--model must be one of {', '.join(WEB_MODELS)}, got {model!r}")
    manifest = manifest_of(folder, required=True)
    onnx = [name for name in WEB_MODELS if name in manifest.exports]
    if not onnx:
        raise EdgecnnError(f"{folder / 'manifest.json'} lists no ONNX export ({', '.join(WEB_MODELS)}): "
                           "run `edgecnn export --format onnx` first")
    if model not in onnx:
        raise EdgecnnError(f"{folder / 'manifest.json'} has no {model} export (it has: {', '.join(onnx)})")
    entry = manifest.exports[model]
    source = folder / entry.file
    if not source.is_file():
        raise EdgecnnError(f"{source} is listed in the manifest but missing")
    out = Path(out) if out is not None else folder / "web"
    if out.exists() and not out.is_dir():
        raise EdgecnnError(f"--out {out} is a file, expected a folder")
    dist = find_ort_web()
    preprocessing = dict(manifest.preprocessing or DEFAULT_PREPROCESSING)
    class_names = list(manifest.class_names or [str(i) for i in range(manifest.model.classes if manifest.model else 10)])
    images = _sample_images(folder, manifest, data)  # an altered test_set.npz fails before writing
    out = ensure_writable_dir(out)

    files = [_copy(dist / name, out / "ort" / name) for name in ORT_WEB_FILES]
    static = resources.files(__package__) / "static"
    files += [write_bytes(out / name, (static / name).read_bytes()) for name in STATIC_FILES]
    files.append(_copy(source, out / entry.file))
    samples = _write_samples(out, images, class_names)
    files += [out / s["file"] for s in samples]
    files.append(write_json(out / "config.json", {
        "name": folder.name, "class_names": class_names, "preprocessing": preprocessing,
        "model": {"file": entry.file, "format": model, "precision": entry.precision, "sha256": entry.sha256,
                  "bytes": source.stat().st_size},
        "samples": samples}))
    return WebApp(out, model, files, len(samples))


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return target


def _sample_images(folder: Path, manifest, data: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Labelled test images for the page: the bundle's own test set (see :func:`test_set_of`), else none
    (the page still classifies a dropped or picked image). An altered copy of it still fails, naming the file."""
    try:
        test = test_set_of(folder, manifest, data)
    except AlteredTestSetError:
        raise
    except DataError:
        return None
    return to_pixels(test.x), test.y


def _write_samples(out: Path, images: tuple[np.ndarray, np.ndarray] | None, class_names: list[str]) -> list[dict]:
    """A few test images as PNG, one per class (the first of each) for the first classes."""
    from PIL import Image

    if images is None:
        return []
    x, y = images
    samples = []
    for label in range(min(SAMPLES, len(class_names))):
        found = np.flatnonzero(y == label)
        if not len(found):
            continue
        index = int(found[0])
        name = f"samples/test-{index}.png"
        (out / "samples").mkdir(exist_ok=True)
        with atomic_path(out / name) as tmp:
            Image.fromarray(x[index].squeeze(-1) if x.ndim == 4 and x.shape[-1] == 1 else x[index]).save(tmp, format="PNG")
        samples.append({"file": name, "label": class_names[label], "index": index})
    return samples
