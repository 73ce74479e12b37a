"""Batch prediction throughput: `predict DIR --out` at 1 and 2 workers and on a local Ray cluster, against the ceiling.

Usage: python bench/batch_predict.py [--bundle DIR [--label NAME]] ... [--images N] [--work DIR] [--rounds R]

The folder is N Fashion-MNIST PNGs (test split first, then training images),
each model reading them through its own preprocessing (a 32x32 RGB model
converts and crops them as it would any user's images). For each bundle's int8
TFLite and ONNX files it times, in alternating rounds, a whole `score_folder`
run (listing, decoding, predicting, writing the parts and the output) with 1
worker (with 1 runtime thread, as each of 2 has, and with every core, its default) and with 2 (1 runtime
thread each), and through Ray Data on a local
cluster with 2 actors, whose figure includes starting the cluster; and the
ceiling: the bare runtime's batch throughput on images already decoded
(``run_native`` on prepared batches of 64, one thread, times the cores), and
decoding alone. Writes ``bench/batch.json``, ``bench/BATCH.md`` and the block between
``<!-- batch:start -->`` and ``<!-- batch:end -->`` in README.md, with the machine.
"""
from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edgecnn.batch import score_folder  # noqa: E402
from edgecnn.batch.scorer import DEFAULT_BATCH  # noqa: E402
from edgecnn.fileio import write_json, write_text  # noqa: E402
from edgecnn.render.readme import replace_block  # noqa: E402
from edgecnn.runtime import Predictor  # noqa: E402
from edgecnn.versions import machine, utc_now  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")
FILES = ("model_int8.tflite", "model_int8.onnx")
START, END = "<!-- batch:start -->", "<!-- batch:end -->"
CORES = os.cpu_count() or 1
#: One worker with one runtime thread, as each of two has; one worker as `--workers 1` runs by default (its runtime
#: on every core); two workers; two Ray actors.
RUNS = {"1 worker, 1 thread": {"workers": 1, "threads": 1},
        f"1 worker, {CORES} threads": {"workers": 1, "threads": CORES},
        "2 workers": {"workers": 2, "threads": 1}, "Ray, 2 actors": {"workers": 2, "threads": 1, "ray": ""}}


def write_images(folder: Path, n: int) -> Path:
    """``n`` Fashion-MNIST PNGs, 1,000 a sub-folder."""
    from PIL import Image

    arrays = [np.frombuffer(gzip.open(FASHION / f"{split}-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
              .reshape(-1, 28, 28) for split in ("t10k", "train")]
    images = np.concatenate(arrays)[:n]
    for i, image in enumerate(images):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(sub / f"{i:06d}.png")
    return folder


def ceiling(model: Path, folder: Path, sample: int = 2000) -> dict[str, float]:
    """Images/s of the bare runtime on decoded batches (1 thread) and of decoding alone (1 process)."""
    predictor = Predictor.load(model, threads=1)
    files = sorted(folder.rglob("*.png"))[:sample]
    start = time.perf_counter()
    decoded = np.stack([predictor.image_input(f) for f in files])
    decode = len(files) / (time.perf_counter() - start)
    batches = [predictor.prepare(decoded[i:i + DEFAULT_BATCH]) for i in range(0, len(decoded), DEFAULT_BATCH)]
    run = predictor.runtime.run_native
    for batch in batches[:3]:
        run(batch)
    start = time.perf_counter()
    for batch in batches:
        run(batch)
    return {"decode_images_per_s": decode, "runtime_images_per_s": len(decoded) / (time.perf_counter() - start)}


def measure(model: Path, label: str, folder: Path, work: Path, rounds: int) -> dict:
    seconds: dict[str, list[float]] = {name: [] for name in RUNS}
    for r in range(rounds):
        for name, options in (RUNS.items() if r % 2 == 0 else reversed(RUNS.items())):
            out = work / f"{model.stem}-{r}-{name.replace(' ', '').replace(',', '')}.csv"
            start = time.perf_counter()
            report = score_folder(folder, out, model=model, **options)
            seconds[name].append(time.perf_counter() - start)
            assert report.failed == 0
            out.unlink()
            out.with_name(out.stem + ".errors.tsv").unlink()
    images = report.images
    rates = {name: images / statistics.median(s) for name, s in seconds.items()}
    return {"model": f"{label}/{model.name}", "images": images, "rounds": rounds, "seconds": seconds, "images_per_s": rates,
            "two_vs_one": rates["2 workers"] / rates["1 worker, 1 thread"],
            "two_vs_default_one": rates["2 workers"] / rates[f"1 worker, {CORES} threads"], **ceiling(model, folder)}


def render(results: list[dict], info: dict) -> str:
    """The figures block of BATCH.md and README.md: how they were measured, then one row per model file."""
    cores = info["machine"]["cores"]
    lines = [f"Written by `python bench/batch_predict.py` on {info['created']}, "
             f"on {info['machine']['cpu']} ({cores} cores; flags: {', '.join(info['machine']['cpu_flags']) or 'none'}). "
             f"{results[0]['images']:,} Fashion-MNIST PNGs in {results[0]['images'] // 1000} folders; each figure is "
             f"images / the median wall time of {results[0]['rounds']} whole runs (listing, decoding, predicting, "
             "writing), the configurations alternating. Ray's includes starting a local cluster. The ceiling is the "
             f"bare runtime on already-decoded batches of {DEFAULT_BATCH}, one thread, times the {cores} cores.", "",
             f"| model | 1 worker, 1 thread | 1 worker, {CORES} threads | 2 workers, 1 thread each | 2 / 1 | "
             f"2 / 1 ({CORES} threads) | Ray, 2 actors | decoding alone, 1 process | ceiling |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rate = r["images_per_s"]
        lines.append(f"| `{r['model']}` | {rate['1 worker, 1 thread']:,.0f} | {rate[f'1 worker, {CORES} threads']:,.0f} | "
                     f"{rate['2 workers']:,.0f} | {r['two_vs_one']:.2f}x | {r['two_vs_default_one']:.2f}x | "
                     f"{rate['Ray, 2 actors']:,.0f} | {r['decode_images_per_s']:,.0f} | "
                     f"{cores * r['runtime_images_per_s']:,.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, action="append", help="Bundle folders (default: models/fashion-cnn).")
    parser.add_argument("--label", action="append", default=[], help="What to call each bundle in the table, in order "
                                                                     "(default: its folder's name).")
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    bundles = args.bundle or [HERE.parent / "models" / "fashion-cnn"]
    labels = args.label + [bundle.name for bundle in bundles[len(args.label):]]
    with tempfile.TemporaryDirectory(prefix="edgecnn-batch-") as tmp:
        work = args.work or Path(tmp)
        folder = work / "images"
        if not folder.is_dir():
            write_images(folder, args.images)
        results = [measure(bundle / name, label, folder, work, args.rounds)
                   for bundle, label in zip(bundles, labels) for name in FILES]
    info = {"created": utc_now(), "machine": machine()}
    write_json(HERE / "batch.json", {**info, "results": results})
    block = render(results, info)
    write_text(HERE / "BATCH.md", "# Batch prediction throughput\n\n" + block)
    replace_block(HERE.parent / "README.md", START, END, lambda: block.rstrip("\n"), "the batch figures")
    print(block)


if __name__ == "__main__":
    main()
