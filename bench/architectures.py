"""Keras applications models, briefly trained on real images, through the README's own commands.

Usage: python bench/architectures.py [--train N] [--test N] [--epochs E] [--export-limit S] [--work DIR]
       python bench/architectures.py --render README.md    (only rewrite the README's table from the JSON)

For each architecture of ``tests.architectures.TRAINED`` (MobileNetV3Small with
its Rescaling inside, MobileNetV2 in a user's Rescaling wrapper, EfficientNetB0
with Rescaling + Normalization inside) on Fashion-MNIST as 32x32 RGB class
folders: train ``--epochs`` epochs, then time ``edgecnn export --model
model.keras --out bundle --data folders`` (every format, default settings) and
run ``edgecnn verify bundle``, each in its own process as a user runs them. An
export still running after ``--export-limit`` seconds is stopped and recorded
as such, then run again with ``--all-int8`` (no per-layer search) so that every
file is still verified.

Then the delegate question: the float32 TFLite file three ways (a dynamic batch
traced with Keras's own reshapes, as before ``edgecnn.batch_free``; a dynamic
batch as exported now; ``--batch 1``), with XNNPACK's partition count and p50
latency at batch 1, one thread, timed alternately in one run.

Writes ``bench/architectures.json`` and the README block between
``<!-- architectures:start -->`` and ``<!-- architectures:end -->``
(:mod:`edgecnn.render.architectures`); ``tests/test_readme_architectures.py``
checks that block against the JSON.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the recipe is the e2e tests' own: tests/architectures.py

import numpy as np  # noqa: E402

from edgecnn.fileio import write_text  # noqa: E402
from edgecnn.render.architectures import update_readme_architectures  # noqa: E402
from edgecnn.versions import machine, utc_now  # noqa: E402

RESULTS = REPO / "bench" / "architectures.json"
LATENCY_RUNS = 300


def _edgecnn(*args: str, timeout: float | None = None) -> tuple[int | None, float, str]:
    """Run the CLI as a user does: (exit code or None when stopped at ``timeout``, seconds, stderr's tail)."""
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - started, ""
    return done.returncode, time.perf_counter() - started, done.stderr[-3000:]


def _train(name: str, folders: Path, out: Path, epochs: int) -> dict:
    from tests.architectures import train_briefly

    from edgecnn.datasets.folders import load_folders

    started = time.perf_counter()
    data = load_folders(folders)
    model = train_briefly(name, data, epochs=epochs)
    seconds = time.perf_counter() - started
    model.save(out)
    probs = model.predict(data.x_test.astype(np.float32), verbose=0, batch_size=256)
    return {"keras_class": _keras_class(model), "params": int(model.count_params()), "epochs": epochs,
            "train_images": int(len(data.x_train)), "seconds": round(seconds, 1),
            "test_accuracy": round(float(np.mean(probs.argmax(1) == data.y_test)), 4)}


def _keras_class(model) -> str:
    """The application inside (a wrapper's nested model), else the model's own name."""
    inner = [layer for layer in model.layers if hasattr(layer, "layers")]
    return f"{model.name}({inner[0].name})" if inner else model.name


def _export_and_verify(model: Path, folders: Path, bundle: Path, limit: float) -> dict:
    rc, seconds, tail = _edgecnn("export", "--model", str(model), "--out", str(bundle), "--data", str(folders),
                                 timeout=limit)
    record = {"command": "edgecnn export --model model.keras --out bundle --data folders",
              "exit_code": rc, "seconds": round(seconds, 1), "finished": rc is not None}
    if rc is None:
        rc, seconds, tail = _edgecnn("export", "--model", str(model), "--out", str(bundle), "--data", str(folders),
                                     "--all-int8")
        record["all_int8"] = {"exit_code": rc, "seconds": round(seconds, 1)}
    record["fail_lines"] = [line for line in tail.splitlines() if line.startswith("FAIL")]
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    record["format_seconds"] = {fmt: entry.get("seconds") for fmt, entry in manifest["exports"].items()}
    record["float_layers"] = {fmt: sum(layer["precision"] == "float32" for layer in entry["layers"])
                              for fmt, entry in manifest["exports"].items() if entry.get("layers")}
    record["float_ops"] = {fmt: entry["float_ops"] for fmt, entry in manifest["exports"].items()
                           if entry.get("float_ops")}
    vrc, vseconds, _ = _edgecnn("verify", str(bundle))
    verified = json.loads((bundle / "verify.json").read_text(encoding="utf-8"))
    record["verify"] = {"exit_code": vrc, "seconds": round(vseconds, 1), "exports": {
        fmt: {"passed": e["passed"], "agreement": e["agreement"], "confident_agreement": e.get("confident_agreement"),
              "max_abs_diff": e["max_abs_diff"],
              "accuracy": e["accuracy"], "failures": e["failures"],
              "xnnpack": _xnnpack_line(e.get("compatibility"))}
        for fmt, e in verified["exports"].items()}}
    return record


def _xnnpack_line(compatibility: dict | None) -> str | None:
    lines = (compatibility or {}).get("summary", [])
    return next((line for line in lines if line.startswith("XNNPACK")), None)


def _delegate(model_path: Path, folders: Path, work: Path) -> dict:
    """The float32 TFLite file with Keras's reshapes, batch-free reshapes, and a static batch of 1."""
    from ai_edge_litert.interpreter import Interpreter

    from edgecnn.bench.timing import time_alternating
    from edgecnn.convert import source
    from edgecnn.export import export_model
    from edgecnn.runtime.xnnpack import xnnpack_coverage

    variants = {"dynamic, Keras's reshapes": {"batch": None, "keras_reshapes": True},
                "dynamic (shipped)": {"batch": None, "keras_reshapes": False},
                "static batch 1 (--batch 1)": {"batch": 1, "keras_reshapes": False}}
    files, calls = {}, []
    for i, (label, how) in enumerate(variants.items()):
        out = work / f"delegate-{i}"
        traced = source.batch_free_reshapes
        if how["keras_reshapes"]:  # the trace as it was before edgecnn.batch_free
            source.batch_free_reshapes = contextlib.nullcontext
        try:
            export_model(model_path, ("tflite",), out, data=folders, batch=how["batch"])
        finally:
            source.batch_free_reshapes = traced
        files[label] = out / "model_fp32.tflite"
        interpreter = Interpreter(model_path=str(files[label]), num_threads=1)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
        interpreter.set_tensor(inp["index"], np.zeros([1, *inp["shape"][1:]], np.float32))
        calls.append(interpreter.invoke)
    seconds = time_alternating(calls, runs=LATENCY_RUNS, warmup=20, block=10)
    found = {}
    for (label, path), row in zip(files.items(), seconds):
        coverage = xnnpack_coverage(path)
        found[label] = {"partitions": coverage["partitions"], "not_delegated": coverage["not_delegated"],
                        "p50_ms": round(float(np.median(row)) * 1e3, 3)}
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=12000, help="Training images (the first N of Fashion-MNIST).")
    parser.add_argument("--test", type=int, default=2000, help="Test images (the first N).")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--export-limit", type=float, default=900, help="Seconds before a default export is stopped.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgecnn-architectures"))
    parser.add_argument("--only", nargs="*", default=None, help="Architectures to run (default: all).")
    parser.add_argument("--render", type=Path, default=None, help="Only rewrite this README's table from the JSON.")
    args = parser.parse_args(argv)
    if args.render:
        update_readme_architectures(args.render, json.loads(RESULTS.read_text(encoding="utf-8")))
        return 0

    from tests.architectures import TRAINED, fashion_folders

    folders = args.work / "fashion-rgb"
    if not (folders / "test").is_dir():
        fashion_folders(folders, train=args.train, test=args.test)
    record = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() and args.only else {
        "architectures": {}}
    for name in args.only or TRAINED:
        root = args.work / name
        root.mkdir(parents=True, exist_ok=True)
        print(f"{name}: training ...", file=sys.stderr, flush=True)
        row = {"train": _train(name, folders, root / "model.keras", args.epochs)}
        print(f"{name}: export --format all, verify ...", file=sys.stderr, flush=True)
        row["export"] = _export_and_verify(root / "model.keras", folders, root / "bundle", args.export_limit)
        print(f"{name}: delegate partitions and latency ...", file=sys.stderr, flush=True)
        row["delegate"] = _delegate(root / "model.keras", folders, root)
        record["architectures"][name] = row
        record.update(created=utc_now(), machine=machine(),
                      config={"train_images": args.train, "test_images": args.test, "epochs": args.epochs,
                              "export_limit_s": args.export_limit, "data": "Fashion-MNIST as 32x32 RGB PNG folders",
                              "latency": f"LiteRT + XNNPACK, 1 thread, batch 1, p50 of {LATENCY_RUNS} alternated runs"})
        write_text(RESULTS, json.dumps(record, indent=2) + "\n")
    update_readme_architectures(REPO / "README.md", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
