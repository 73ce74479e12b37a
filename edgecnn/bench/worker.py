"""One benchmark case in a fresh process: ``python -m edgecnn.bench.worker CASE.json``.

Each case (model x mode x batch size x threads) runs in its own process so that
models do not pollute each other's memory, the peak resident memory read at the
end is that of one model being loaded and run, TensorFlow's thread pools can be
sized before it starts, and the load time is a cold one (it includes importing
the runtime library, as a cold start does).

The case file says what to run; the result (or ``{"error": ...}``) is written to
the JSON file the case names.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from ..errors import EdgecnnError
from .timing import measure, time_alternating

#: Modes timed on a .tflite/.onnx file and on a .keras file.
EXPORT_MODES = ("predictor", "raw")
KERAS_MODES = ("keras.predict", "keras.call")
#: Two exports (``paths``) through the Predictor in one process, in alternating blocks of calls.
PAIR_MODE = "pair"
PAIR_BLOCK = 50


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (VmHWM), in MiB; ``None`` where the OS does not say."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB elsewhere


class Loaded(NamedTuple):
    """A model ready to time: the call of the case's mode and, for the Predictor, the calls it is made of
    (the bare runtime call on prepared input, and the input preparation alone)."""

    call: Callable[[], Any]
    parts: dict[str, Callable[[], Any]] | None = None


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Load the model, time it and report; ``case`` holds path, mode, batch_size, threads, runs, warmup,
    max_seconds (the case's time budget, or None), min_runs (the timed runs a budget keeps at least) and images.

    A Predictor case also times the Predictor, the bare runtime call and the input
    preparation alone in alternation (``paired_p50_s``): the predictor-overhead
    ratio comes from that pairing, and the preparation says where the overhead goes.
    """
    images = np.load(case["images"], allow_pickle=False)[: case["batch_size"]]
    if case["mode"] == PAIR_MODE:
        return run_pair(case, images)
    info: dict[str, Any] = {}
    loaded: list[Loaded] = []
    loader = _keras_loader if case["mode"] in KERAS_MODES else _export_loader

    def load() -> Callable[[], Any]:
        loaded.append(loader(case, images, info))
        return loaded[0].call

    budget = case.get("max_seconds")
    paired = case["mode"] == "predictor"  # two timings share the case's budget, so it bounds the whole case
    share = budget / 2 if paired and budget is not None else budget
    least = case["min_runs"]
    timing = measure(load, batch_size=case["batch_size"], runs=case["runs"], warmup=case["warmup"], max_seconds=share,
                     min_runs=least)
    result = {
        **info,
        "runs": timing.runs,
        "load_s": timing.load_s,
        "first_inference_s": timing.first_inference_s,
        "latency_s": timing.latency.to_dict(),
        "images_per_s": timing.images_per_s,
        "peak_rss_mb": peak_rss_mb(),
    }
    parts = loaded[0].parts
    if parts is not None:
        calls = {"predictor": loaded[0].call, **parts}
        # no warm-up: the timing above has just warmed this very model and its session
        samples = time_alternating(list(calls.values()), runs=case["runs"], max_seconds=share, min_runs=least)
        result["paired_p50_s"] = {name: float(np.median(s)) for name, s in zip(calls, samples)}
    return result


def run_pair(case: dict[str, Any], images: np.ndarray) -> dict[str, Any]:
    """Median latency of each of two exports timed in alternating blocks: a ratio that load drift cannot fake."""
    from ..runtime import Predictor

    predictors = [Predictor.load(path, threads=case["threads"]) for path in case["paths"]]
    samples = time_alternating([lambda p=p: p.predict(images) for p in predictors], runs=case["runs"],
                               warmup=case["warmup"], block=PAIR_BLOCK, max_seconds=case.get("max_seconds"),
                               min_runs=case["min_runs"])
    return {"paired_p50_s": [float(np.median(s)) for s in samples], "runs": samples.shape[1]}


def _export_loader(case: dict[str, Any], images: np.ndarray, info: dict[str, Any]) -> Loaded:
    """The Predictor on uint8 images, or its backend's bare ``run_native`` on input prepared once."""
    from ..runtime import Predictor

    predictor = Predictor.load(case["path"], threads=case["threads"])
    info.update(backend=predictor.backend, precision=predictor.precision)
    native = predictor.prepare(images)
    run_native = predictor.runtime.run_native
    bare = lambda: run_native(native)  # noqa: E731
    if case["mode"] == "predictor":
        return Loaded(lambda: predictor.predict(images), {"raw": bare, "prepare": lambda: predictor.prepare(images)})
    return Loaded(bare)


def _keras_loader(case: dict[str, Any], images: np.ndarray, info: dict[str, Any]) -> Loaded:
    """The reference's ``model.predict(x)`` or a direct ``model(x, training=False)``, on float input in the bundle's
    input range (else the one the model's own rescaling layer fixes)."""
    from .. import tfquiet
    from ..preprocess import to_model_input
    from ..model import detected_input_range, load_model, model_io
    from .facts import keras_facts

    tf = tfquiet.tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(case["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = load_model(case["path"])
    own = detected_input_range(model)
    x = to_model_input(images, model_io(model)[0], case.get("input_range") or (own[0] if own else "0-1"))
    facts = keras_facts(model, case["path"])
    info.update(backend="keras", precision="float32", params=facts.params, macs=facts.macs)
    if case["mode"] == "keras.predict":
        return Loaded(lambda: model.predict(x, verbose=0))
    return Loaded(lambda: np.asarray(model(x, training=False)))


def main(argv: list[str] | None = None) -> int:
    case = json.loads(Path((argv or sys.argv[1:])[0]).read_text(encoding="utf-8"))
    try:
        result = run_case(case)
    except EdgecnnError as exc:  # anything else is a bug: its traceback reaches the parent on stderr
        result = {"error": str(exc)}
    Path(case["out"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
