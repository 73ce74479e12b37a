"""One model's benchmark cases in a fresh process: ``python -m edgecnn.bench.worker GROUP.json``.

Each model file (at one thread count) runs in its own process, all its cases
(mode x batch size) in turn on one load: models do not pollute each other's
memory, the peak resident memory read after each case is that of one model
being loaded and run, TensorFlow's thread pools can be sized before it starts,
and the load time is a cold one (it includes importing the runtime library, as
a cold start does). Loading once keeps the benchmark short: a Keras model's
cold start alone (TensorFlow's import and the load) takes 4-6 s.

The group file says what to run; the results (or ``{"error": ...}``) are written
to the JSON file it names.
"""
from __future__ import annotations

import json
import sys
import time
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


class Model(NamedTuple):
    """A loaded model: what it reports (backend, precision, facts) and its calls on given images for a mode."""

    info: dict[str, Any]
    calls: Callable[[np.ndarray, str], Loaded]


def run_group(group: dict[str, Any]) -> dict[str, Any]:
    """Time one model's cases; ``group`` holds path, threads, runs, warmup, max_seconds (each case's time
    budget, or None), min_runs (the timed runs a budget keeps at the least), images, input_range, and
    ``cases``: their mode and batch_size. A pair group (mode ``pair``) times two exports instead.

    The model is loaded once, cold (the runtime's import included), and every row reports that load. A Predictor
    case also times the Predictor, the bare runtime call and the input preparation alone in alternation
    (``paired_p50_s``): the predictor-overhead ratio comes from that pairing, and the preparation says where
    the overhead goes.
    """
    images = np.load(group["images"], allow_pickle=False)
    if group.get("mode") == PAIR_MODE:
        return run_pair(group, images[: group["batch_size"]])
    loader = _keras_loader if group["cases"][0]["mode"] in KERAS_MODES else _export_loader
    start = time.perf_counter()
    model = loader(group)
    load_s = time.perf_counter() - start
    return {"results": [{**_run_case(group, case, model.calls(images[: case["batch_size"]], case["mode"])),
                         **model.info, "load_s": load_s} for case in group["cases"]]}


def _run_case(group: dict[str, Any], case: dict[str, Any], loaded: Loaded) -> dict[str, Any]:
    budget = group.get("max_seconds")
    paired = loaded.parts is not None  # two timings share the case's budget, so it bounds the whole case
    share = budget / 2 if paired and budget is not None else budget
    least = group["min_runs"]
    timing = measure(lambda: loaded.call, batch_size=case["batch_size"], runs=group["runs"], warmup=group["warmup"],
                     max_seconds=share, min_runs=least)
    result = {
        "runs": timing.runs,
        "first_inference_s": timing.first_inference_s,
        "latency_s": timing.latency.to_dict(),
        "images_per_s": timing.images_per_s,
        "peak_rss_mb": peak_rss_mb(),
    }
    if paired:
        calls = {"predictor": loaded.call, **loaded.parts}
        # no warm-up: the timing above has just warmed this very model and its session
        samples = time_alternating(list(calls.values()), runs=group["runs"], max_seconds=share, min_runs=least)
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


def _export_loader(group: dict[str, Any]) -> Model:
    """The Predictor on uint8 images, or its backend's bare ``run_native`` on input prepared once."""
    from ..runtime import Predictor

    predictor = Predictor.load(group["path"], threads=group["threads"])
    run_native = predictor.runtime.run_native

    def calls(images: np.ndarray, mode: str) -> Loaded:
        native = predictor.prepare(images)
        bare = lambda: run_native(native)  # noqa: E731
        if mode == "predictor":
            return Loaded(lambda: predictor.predict(images), {"raw": bare, "prepare": lambda: predictor.prepare(images)})
        return Loaded(bare)

    return Model({"backend": predictor.backend, "precision": predictor.precision}, calls)


def _keras_loader(group: dict[str, Any]) -> Model:
    """The reference's ``model.predict(x)`` or a direct ``model(x, training=False)``, on float input in the bundle's
    input range (else the one the model's own rescaling layer fixes)."""
    from .. import tfquiet
    from ..preprocess import to_model_input
    from ..model import detected_input_range, load_model, model_io
    from .facts import keras_facts

    tf = tfquiet.tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(group["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = load_model(group["path"])
    own = detected_input_range(model)
    input_range = group.get("input_range") or (own[0] if own else "0-1")
    facts = keras_facts(model, group["path"])

    def calls(images: np.ndarray, mode: str) -> Loaded:
        x = to_model_input(images, model_io(model)[0], input_range)
        if mode == "keras.predict":
            return Loaded(lambda: model.predict(x, verbose=0))
        return Loaded(lambda: np.asarray(model(x, training=False)))

    return Model({"backend": "keras", "precision": "float32", "params": facts.params, "macs": facts.macs}, calls)


def main(argv: list[str] | None = None) -> int:
    group = json.loads(Path((argv or sys.argv[1:])[0]).read_text(encoding="utf-8"))
    try:
        result = run_group(group)
    except EdgecnnError as exc:  # anything else is a bug: its traceback reaches the parent on stderr
        result = {"error": str(exc)}
    Path(group["out"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
