"""Latency on real sizes: MobileNetV2 (alpha 1.0) and MobileNetV3Small at 224x224, beside the reference CNN.

Usage: python bench/real_sizes.py [--work DIR] [--runs N]

Each Keras applications model is built with ``weights=None`` (nothing can be
downloaded; random weights serve for latency) and 1,000 classes, exported to
``tflite``, ``tflite-int8``, ``onnx`` and ``onnx-int8`` with every layer int8
(``max_accuracy_drop=None``: a per-layer search on random weights would mean
nothing), calibrated on random pixels. The committed reference bundle
(models/fashion-cnn) supplies the reference CNN's four files. Each float32 file
and its int8 file are timed at batch 1 on one thread, alternating in blocks of
50 calls in one process, so their ratio is measured within one run. Writes
``bench/real_sizes.json`` and the block between ``<!-- real-sizes:start -->``
and ``<!-- real-sizes:end -->`` in bench/RESULTS.md, with the machine.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edgecnn.bench.timing import time_alternating  # noqa: E402
from edgecnn.fileio import write_json  # noqa: E402
from edgecnn.render.readme import replace_block  # noqa: E402
from edgecnn.render.real_sizes import END, SIZE, START, render  # noqa: E402
from edgecnn.versions import machine, utc_now  # noqa: E402

MODELS = {"MobileNetV2 (alpha 1.0)": ("MobileNetV2", {"alpha": 1.0}),
          "MobileNetV3Small": ("MobileNetV3Small", {})}
PAIRS = (("tflite", "tflite-int8"), ("onnx", "onnx-int8"))


def export(name: str, work: Path) -> Path:
    """The named application at 224x224, exported to the four files; the bundle folder."""
    from edgecnn import tfquiet
    from edgecnn.export import export_model
    from edgecnn.model import save_model

    keras = tfquiet.keras()
    keras.utils.set_random_seed(0)
    app, options = MODELS[name]
    model = getattr(keras.applications, app)(input_shape=(SIZE, SIZE, 3), weights=None, **options)
    folder = work / app
    folder.mkdir(parents=True, exist_ok=True)
    path = save_model(model, folder / "model.keras")
    rng = np.random.default_rng(0)
    npz = folder / "pixels.npz"
    np.savez(npz, x=rng.integers(0, 256, (64, SIZE, SIZE, 3), dtype=np.uint8))
    result = export_model(path, [f for pair in PAIRS for f in pair], folder / "bundle", data=npz,
                          calibration_samples=32, max_accuracy_drop=None)
    if result.failed:
        raise SystemExit(f"{name}: {result.failed}")
    return folder / "bundle"


def time_pairs(bundle: Path, runs: int) -> dict[str, dict]:
    """p50 at batch 1, 1 thread, of each format; float32 and int8 of one runtime alternate in one process."""
    from edgecnn.export import FORMATS
    from edgecnn.runtime import Predictor

    found = {}
    for pair in PAIRS:
        predictors = [Predictor.load(bundle / FORMATS[name].file, threads=1) for name in pair]
        shape = predictors[0].input_shape
        image = np.random.default_rng(1).integers(0, 256, (1, *shape[:2]) + ((shape[2],) if shape[2] == 3 else ()),
                                                  dtype=np.uint8)
        samples = time_alternating([lambda p=p: p.predict(image) for p in predictors], runs=runs, warmup=50, block=50)
        p50 = [float(np.median(s)) for s in samples]
        for name, value in zip(pair, p50):
            found[name] = {"p50_s": value}
        found[pair[1]]["int8_over_float32"] = p50[1] / p50[0]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgecnn-real-sizes"))
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    models = {"reference CNN (28x28)": time_pairs(HERE.parent / "models" / "fashion-cnn", args.runs)}
    for name in MODELS:
        models[name] = time_pairs(export(name, args.work), args.runs)
    record = {"created": utc_now(), "machine": machine(), "runs": args.runs, "models": models}
    write_json(HERE / "real_sizes.json", record)
    replace_block(HERE / "RESULTS.md", START, END, lambda: render(record), "the real-size latency table")
    print(render(record))


if __name__ == "__main__":
    main()
