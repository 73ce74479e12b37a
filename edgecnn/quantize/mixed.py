"""Mixed precision chosen by measurement: which layers stay float, and why.

Start from every layer in int8. A layer whose int8 kernel is measured clearly
slower than its float one (:data:`SLOWER_IN_INT8`) goes float when that costs no
accuracy the budget cares about: the validation accuracy does not fall, or the
drop stays within the budget (a free choice goes to speed; a few images of
validation noise must not keep a slow kernel) (reason ``latency``). A layer
timed alone does not pay the quantize and dequantize ops its float island adds,
so those layers stay float only when the whole model is measured faster with
them float than all-int8 (:class:`LatencyCheck`, timed first, so that none is
evaluated when it is not; re-timed when some cost accuracy); else they return
to int8. Layers
whose int8 ops the runtime's accelerator leaves on the CPU (XNNPACK and int8
HARD_SWISH) are tried float together, and go float (reason ``delegate``) when
the whole candidate model is measured faster and the budget allows it: one
island of CPU ops between delegate partitions may cost less than the float
layers do, so the fact alone does not decide. Then the layers are taken in the
order of the SQNR their int8 output keeps (one debugger pass for all of them;
ties: the larger float saving, then graph order), and while the drop against the
float model exceeds the budget (or the agreement is below verify's gate), a
prefix of that order goes float (reason ``error``): the shortest that holds it,
found by bisection between none and all, as if more float never hurt (when not
even every layer float reaches it, all go float, where the search would end);
then some of those return to int8 (two layers may only help together: a ruined
tensor and its reader; a low SQNR may do no harm): in blocks, the heaviest
layers first (the most weight bytes int8 saves), a block twice as large after
one returns and half as large after one is refused, at most
:data:`RETURN_TRIES` candidates. A block returns when the budget still holds
without it *and* the file stays near the bisection's end (score and agreement
within :data:`AGREEMENT_NOISE`, mean output error within
:data:`RETURN_ERROR_DRIFT`). Every try is judged on the same validation images,
so every return accepted on them alone is a chance for those images to flatter
the file: EfficientNetB0's ONNX file, after 69 unbounded tries one layer each,
reached 99.11% agreement on validation and 98.19% on the test set, where the
bisection's end had 99.17% and 98.81%. Bounding the tries and the drift bounds
that. One evaluation per step: about log2(layers) for the bisection, at most
:data:`RETURN_TRIES` for the return, and the choice is the same on every run
with the same inputs. Layers left in int8 carry reason ``budget``. What keeping
each layer float alone recovers is measured for explain's table only (``diagnose``).

The loop is the same for every format: a format brings a :class:`Calibrated`
model (TFLite: :mod:`.tflite_layers`, ONNX: :mod:`.onnx_layers`) and a runner
for the :class:`Evaluator`.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Callable, Collection, Iterable, Iterator, Mapping, NamedTuple, Protocol, Sequence

import numpy as np

from ..bench.output import seconds
from ..metrics import confident_agreement
from ..progress import Progress, counted
from .latency import LayerLatency

#: Points of validation accuracy the int8 model may lose against float by default: half the int8 verify
#: gate (1.0 point), so that the gap between the validation split and the test set stays inside the gate.
DEFAULT_MAX_ACCURACY_DROP = 0.5
#: int8 / float32 latency of a layer above which its int8 kernel counts as slower: a margin over timing noise,
#: so that a close call never flips the layer choice between runs.
SLOWER_IN_INT8 = 1.5
#: Whole-model p50 of int8 / a candidate with layers float for speed, above which that candidate counts as faster
#: (the layers slower in int8 alone, the CPU-bound ones): a margin over timing noise, as for :data:`SLOWER_IN_INT8`.
WHOLE_MODEL_GAIN = 1.1
#: The progress step of the bisection for the fewest lowest-SQNR layers to keep float; it may end short of its
#: total (a bound on its steps).
KEEPING_FLOAT = "keeping the lowest-SQNR layers float, bisecting"
#: Then blocks of the layers it kept float are tried in int8 again (at most :data:`RETURN_TRIES` candidates; it
#: may end short, once every layer is decided).
RETURNING_TO_INT8 = "returning needless float layers to int8"
#: Agreement a float choice made for speed may lose below the gate: one or two images of validation noise.
AGREEMENT_NOISE = 0.001
#: Candidates the return pass tries, at most: blocks of the layers the bisection kept float, in int8 again (see the
#: module docstring).
RETURN_TRIES = 12
#: How much the returns together may raise the mean output error over the bisection's end, as a fraction of it.
#: The error is a mean over every image and probability, so it moves where top-1 counts stay within noise: in
#: EfficientNetB0's 69 ONNX returns it rose 17% while the validation agreement held at 99.1% and the test set's
#: fell from 98.81% to 98.19%.
RETURN_ERROR_DRIFT = 0.05
#: Images per interpreter call while evaluating candidates.
EVAL_BATCH = 256


def eval_threads() -> int:
    """Threads a candidate's evaluation runs on: every core (the outputs are the same on any count; timing, not
    this, is what runs on one thread)."""
    return os.cpu_count() or 1


@dataclass(frozen=True)
class QuantLayer:
    """One weighted op and the weightless ops after it, as the quantized graph holds them: the unit kept float."""

    index: int  # position among the weighted ops, 0 = the first
    name: str  # short name: the Keras layer when the graph names it, else from the graph
    op: str  # e.g. CONV_2D (TFLite), Conv (ONNX)
    nodes: tuple[str, ...]  # what the quantizer's exclusion list names: TFLite output tensors, ONNX node names
    input_shape: tuple[int, ...]
    weight_count: int
    int8_weight_bytes: int  # int8 weights + int32 bias, as stored in the int8 file


class Calibrated(Protocol):
    """A model calibrated once, quantized with any set of its layers kept float."""

    layers: list[QuantLayer]

    def quantize(self, float_layers: Collection[QuantLayer]) -> bytes:
        """The quantized file (float input and output) with these layers float."""

    def layer_sqnr(self) -> dict[str, float]:
        """Per layer name: SQNR in dB of the quantization it adds, on held-out images (NaN: not measured)."""


@dataclass(frozen=True)
class LayerReport:
    """One row of the diagnosis: a layer's error, latency, weights and the precision chosen for it."""

    name: str
    op: str
    input_shape: tuple[int, ...]
    weight_bytes_float32: int
    weight_bytes_int8: int
    sqnr_db: float  # int8 output against float on the same input, held-out images (higher is better)
    harm_points: float | None  # validation accuracy recovered by keeping only this layer float (None: not measured)
    output_error: float | None  # mean abs probability change vs float recovered by keeping only this layer float
    float32_s: float | None
    int8_s: float | None
    precision: str
    reason: str
    cpu_ops: tuple[str, ...] = ()  # its int8 ops the runtime's accelerator leaves on the CPU (it takes them float)

    def to_dict(self) -> dict:
        return {**asdict(self), "input_shape": list(self.input_shape), "cpu_ops": list(self.cpu_ops)}


@dataclass(frozen=True)
class DelegateCheck:
    """The whole-model measurement behind reason ``delegate``: the CPU-bound layers in int8 against float."""

    layers: int  # layers with int8 ops left on the CPU
    ops: tuple[str, ...]  # those ops, e.g. ("HARD_SWISH",)
    int8_s: float  # the model with them int8, p50 at batch 1, 1 thread
    float_s: float  # with them float (delegated)
    accuracy: float  # validation score with them float (see measure)
    kept_float: bool
    measure: str = "accuracy"  # "accuracy", or "agreement" with float on unlabelled images

    def to_dict(self) -> dict:
        return {**asdict(self), "ops": list(self.ops)}

    def line(self) -> str:
        """What the measurement decided, in one line (explain, and export's note)."""
        faster = self.int8_s >= WHOLE_MODEL_GAIN * self.float_s
        verdict = ("kept float (faster)" if self.kept_float else
                   f"kept int8 ({'float costs more accuracy than the budget' if faster else 'float is not faster'})")
        return (f"XNNPACK leaves int8 {', '.join(self.ops)} of {self.layers} layers on the CPU; whole model at "
                f"batch 1: {seconds(self.int8_s)} with them int8, {seconds(self.float_s)} float "
                f"({100 * self.accuracy:.2f}% validation {self.measure}): {verdict}")


@dataclass(frozen=True)
class LatencyCheck:
    """The whole-model measurement behind reason ``latency``: the layers measured slower in int8 alone, float
    together, against every layer int8, so that the quantize and dequantize ops around their float islands count."""

    layers: int  # layers slower in int8 alone, whose float costs nothing the budget cares about
    int8_s: float  # the model all-int8, p50 at batch 1, 1 thread
    float_s: float  # with those layers float
    kept_float: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """What the measurement decided, in one line (explain, and export's note)."""
        verdict = ("kept float (faster)" if self.kept_float else
                   "returned to int8 (not faster: the quantize and dequantize ops around the float ones cost what "
                   "they save)")
        counted = f"{self.layers} layers are" if self.layers != 1 else "1 layer is"
        return (f"{counted} slower in int8 alone; whole model at batch 1: {seconds(self.int8_s)} "
                f"all-int8, {seconds(self.float_s)} with them float: {verdict}")


@dataclass
class MixedChoice:
    """The chosen model and everything measured on the way."""

    model: bytes
    layers: list[LayerReport]
    float_accuracy: float
    all_int8_accuracy: float
    accuracy: float
    budget_points: float
    validation_images: int
    float_nodes: list[str]  # the quantizer's exclusion list for this choice (TFLite tensors, ONNX node names)
    delegate: DelegateCheck | None = None  # None: no layer has int8 ops left on the CPU, or latency not measured
    measure: str = "accuracy"  # what the budget is in: "accuracy" (labelled images) or "agreement" (with float)
    agreement: float | None = None  # the chosen file's top-1 agreement with float, near ties not counted
    min_agreement: float | None = None  # the validation agreement the choice also had to reach (None: none)
    latency: LatencyCheck | None = None  # None: no layer slower in int8 alone, or whole models not timed
    agreement_gate: float | None = None  # verify's int8 agreement gate, below min_agreement by the sampling margin

    @property
    def drop_points(self) -> float:
        return 100 * (self.float_accuracy - self.accuracy)

    def misses(self) -> list[str]:
        """What this choice misses, a phrase each: the budget, verify's agreement gate (empty: met)."""
        found = []
        if self.drop_points > self.budget_points + 1e-9:
            found.append(f"validation {self.measure} drop {self.drop_points:.2f} points > budget {self.budget_points:g}")
        if self.min_agreement is not None and self.agreement is not None and self.agreement < self.min_agreement - 1e-12:
            found.append(f"validation agreement with float {100 * self.agreement:.2f}% < {self.agreement_target()} "
                         "(near ties not counted)")
        return found

    def agreement_target(self) -> str:
        """The agreement the choice had to reach, and why: verify's gate, plus the margin for the sample."""
        target = f"{100 * self.min_agreement:.2f}%" if self.min_agreement is not None else "none"
        if self.agreement_gate is None or self.min_agreement is None:
            return target
        return (f"{target} (verify's int8 gate {100 * self.agreement_gate:g}% + "
                f"{100 * (self.min_agreement - self.agreement_gate):.2f} points for the validation sample)")

    @property
    def met(self) -> bool:
        """Within the budget, and at verify's agreement gate: what export accepts, verify passes."""
        return not self.misses()

    def note(self) -> str | None:
        """What the whole-model timings decided, in one line for export (None: nothing was timed whole)."""
        lines = [check.line() for check in (self.latency, self.delegate) if check is not None]
        return "; ".join(lines) or None

    def float_layers(self) -> list[str]:
        return [layer.name for layer in self.layers if layer.precision != "int8"]

    def manifest_fields(self, validation_source: str) -> dict:
        """The manifest's ``layers`` and ``mixed_precision`` (see edgecnn.bundle.schema)."""
        return {"layers": [{"name": r.name, "op": r.op, "precision": r.precision, "reason": r.reason,
                            "sqnr_db": round(r.sqnr_db, 2) if np.isfinite(r.sqnr_db) else None,
                            "harm_points": None if r.harm_points is None else round(r.harm_points, 2),
                            "float32_s": r.float32_s, "int8_s": r.int8_s,
                            "weight_bytes_float32": r.weight_bytes_float32, "weight_bytes_int8": r.weight_bytes_int8,
                            "cpu_ops": list(r.cpu_ops)}
                           for r in self.layers],
                "mixed_precision": {"max_accuracy_drop_points": self.budget_points,
                                    "validation_images": self.validation_images,
                                    "validation_source": validation_source, "float_accuracy": self.float_accuracy,
                                    "all_int8_accuracy": self.all_int8_accuracy, "accuracy": self.accuracy,
                                    "measure": self.measure, "agreement": self.agreement,
                                    "min_agreement": self.min_agreement, "agreement_gate": self.agreement_gate,
                                    "met": self.met, "misses": self.misses(),
                                    "delegate": None if self.delegate is None else self.delegate.to_dict(),
                                    "latency": None if self.latency is None else self.latency.to_dict()}}


class Score(NamedTuple):
    """What one candidate file reaches on the validation images."""

    score: float  # what the budget is in: accuracy (labelled images) or agreement with float (unlabelled)
    error: float  # mean abs probability difference from float
    agreement: float  # top-1 agreement with float, near ties not counted (verify's gated agreement)


class Evaluator:
    """Validation score, output error and agreement of candidate models, against the float model's probabilities.

    The score is accuracy on labelled images; on unlabelled ones it is agreement
    with the float model's top-1 (``measure``), so a budget protects the file
    either way: the float model then scores 1.0 and the budget is in points of
    disagreement. Agreement counts the images the float model is not near a tie
    on, as verify's gates do (:func:`edgecnn.metrics.confident_agreement`).
    ``run(model, x)`` gives a candidate file's float probabilities (default:
    TFLite's :func:`run_tflite`).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray | None, float_probs: np.ndarray,
                 run: Callable[[bytes, np.ndarray], np.ndarray] | None = None) -> None:
        self.x, self.y, self.float_probs = x, y, float_probs
        self.measure = "accuracy" if y is not None else "agreement"
        self.run = run or run_tflite
        self.float_accuracy = float(np.mean(float_probs.argmax(axis=1) == y)) if y is not None else 1.0

    def __call__(self, model: bytes) -> Score:
        probs = self.run(model, self.x)
        agreement = confident_agreement(self.float_probs, probs.argmax(axis=1))
        score = float(np.mean(probs.argmax(axis=1) == self.y)) if self.y is not None else agreement
        return Score(score, float(np.mean(np.abs(probs - self.float_probs))), agreement)


def run_tflite(model: bytes, x: np.ndarray) -> np.ndarray:
    """Float outputs of a float-input TFLite model (mixed models keep float input and output) on a batch."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=eval_threads())
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    fixed = int(inp["shape_signature"][0]) > 0  # a static batch (export --batch 1) cannot resize: one image a call
    step = 1 if fixed else EVAL_BATCH
    interpreter.allocate_tensors()
    chunks = []
    for start in range(0, len(x), step):
        batch = x[start:start + step]
        if not fixed:
            interpreter.resize_tensor_input(inp["index"], batch.shape)
            interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], batch)
        interpreter.invoke()
        chunks.append(interpreter.get_tensor(out["index"]).astype(np.float32))
    return np.concatenate(chunks)


def choose(calibrated: Calibrated, evaluate: Evaluator, budget_points: float,
           latencies: Sequence[LayerLatency] | None = None, *, min_agreement: float | None = None,
           agreement_gate: float | None = None,
           cpu_ops: Mapping[int, tuple[str, ...]] | None = None,
           time_models: Callable[[Sequence[bytes]], Sequence[float]] | None = None,
           diagnose: bool = True, on_progress: Progress | None = None) -> MixedChoice:
    """The choice described in the module docstring; ``latencies`` per layer (None: not measured).

    ``min_agreement``: the validation agreement to reach with the budget (a fraction), ``agreement_gate`` the
    verify gate it was derived from (recorded);
    ``cpu_ops``: per layer index, its int8 ops the accelerator leaves on the CPU;
    ``time_models`` gives the p50 of whole files (None: not timed, so the CPU-bound layers stay int8 and the
    layers slower in int8 alone go float on their own figures).
    ``diagnose``: measure what each layer alone recovers (explain's table: one candidate per layer); the choice is
    the same without it (export).
    ``on_progress`` hears of each candidate evaluated: every layer alone, then each step's.
    """
    layers = calibrated.layers
    timed = list(latencies) if latencies is not None and len(latencies) == len(layers) else None
    sqnr = calibrated.layer_sqnr()
    base = evaluate(calibrated.quantize(()))
    alone: dict[int, Score] = {}
    if diagnose:  # explain's table: what each layer alone float recovers, one candidate a layer (the search orders
        # by SQNR, so export skips these)
        alone.update(zip((layer.index for layer in layers), _overlapped(
            (calibrated.quantize((layer,)) for layer in counted(layers, "measuring harm", on_progress)), evaluate)))
    reasons: dict[int, str] = {}
    now = base
    budget = budget_points / 100
    gate = -1.0 if min_agreement is None else min_agreement - 1e-12

    def with_float(extra: QuantLayer) -> Score:
        chosen = [layer for layer in layers if layer.index in reasons or layer is extra]
        return alone[extra.index] if len(chosen) == 1 and extra.index in alone else \
            evaluate(calibrated.quantize(chosen))

    def over(candidate: Score) -> bool:
        """Beyond the budget, or below the agreement gate."""
        return evaluate.float_accuracy - candidate.score > budget + 1e-12 or candidate.agreement < gate

    def free(candidate: Score) -> bool:
        """A float choice made for speed is free when it loses nothing the budget and the gate care about: the
        score does not fall, or stays within budget; the agreement stays at the gate, or within noise of now."""
        return (candidate.score >= now.score or evaluate.float_accuracy - candidate.score <= budget + 1e-12) and \
            (candidate.agreement >= gate or candidate.agreement >= now.agreement - AGREEMENT_NOISE)

    slower = [layer for layer in layers if timed and timed[layer.index].ratio >= SLOWER_IN_INT8]
    # the whole model first: when their float does not pay there, none is evaluated for it (EfficientNetB0's ONNX
    # file: 5 candidates, 27 s, all returned to int8)
    latency = _whole_model(calibrated, time_models, slower) if slower and time_models is not None else None
    for layer in counted(slower if latency is None or latency.kept_float else [], "trying float for speed",
                         on_progress):
        candidate = with_float(layer)
        if free(candidate):
            reasons[layer.index], now = "latency", candidate
    if latency is not None and latency.kept_float and len(reasons) < len(slower):  # some cost accuracy: time the
        # rest whole (none left: nothing is kept float for speed)
        latency = _whole_model(calibrated, time_models, [layer for layer in layers if layer.index in reasons]) \
            if reasons else None
    if latency is not None and not latency.kept_float:
        reasons.clear()
        now = base
    cpu_ops = dict(cpu_ops or {})
    delegate = None
    stranded = [layer for layer in layers if layer.index in cpu_ops and layer.index not in reasons]
    if stranded and time_models is not None:
        current = [layer for layer in layers if layer.index in reasons]
        chosen = sorted([*current, *stranded], key=lambda layer: layer.index)
        candidate = evaluate(calibrated.quantize(chosen))
        int8_s, float_s = time_models([calibrated.quantize(current), calibrated.quantize(chosen)])
        go_float = int8_s >= WHOLE_MODEL_GAIN * float_s and free(candidate)
        delegate = DelegateCheck(len(stranded), tuple(sorted({op for layer in stranded for op in cpu_ops[layer.index]})),
                                 int8_s, float_s, candidate.score, go_float, evaluate.measure)
        if go_float:
            now = candidate
            reasons.update((layer.index, "delegate") for layer in stranded)
    # worst first by the one-pass measure, the SQNR each layer's int8 output keeps (unknown last; ties: the larger
    # float saving, then graph order); then the shortest such prefix kept float that holds the budget, found by
    # bisection: about log2(layers) candidates. (On MobileNetV3Small without labels, ordering by what each layer
    # alone recovers, one candidate a layer, kept 28 of 54 ONNX layers float where this keeps 15, in half the time.)
    order = sorted((layer for layer in layers if layer.index not in reasons), key=lambda layer: (
        _worst(sqnr.get(layer.name)), -(timed[layer.index].float32_s - timed[layer.index].int8_s) if timed else 0,
        layer.index))
    added: list[QuantLayer] = []
    everything = evaluate(calibrated.quantize(layers)) if over(now) and order else None
    if everything is not None and over(everything):
        # not even every layer float reaches it (ops outside the layers stay int8): go there at once
        reasons.update((layer.index, "error") for layer in order)
        now = everything
    elif everything is not None:
        current = [layer for layer in layers if layer.index in reasons]
        short, enough, now = 0, len(order), everything  # a prefix of `short` layers misses, of `enough` holds
        for _ in counted(range(math.ceil(math.log2(len(order)))), KEEPING_FLOAT, on_progress):
            if enough - short <= 1:
                break
            middle = (short + enough) // 2
            candidate = evaluate(calibrated.quantize(sorted([*current, *order[:middle]], key=lambda l: l.index)))
            short, enough, now = (middle, enough, now) if over(candidate) else (short, middle, candidate)
        added = order[:enough]
        reasons.update((layer.index, "error") for layer in added)
    if len(added) > 1 and not over(now):  # a layer that helped early may be needless once later ones are float
        settled = now  # the bisection's end: what every return is judged against, so that the drift stays in noise

        def holds(candidate: Score) -> bool:
            return not over(candidate) and candidate.score >= settled.score - AGREEMENT_NOISE and \
                candidate.agreement >= settled.agreement - AGREEMENT_NOISE and \
                candidate.error <= (1 + RETURN_ERROR_DRIFT) * settled.error

        # the last layer added, returned alone, is the prefix the bisection saw miss; of the others, the heaviest
        # first (weights, not timings: the same tries on every run), then graph order
        pending = sorted(added[:-1], key=lambda layer: (-layer.weight_count, layer.index))
        block = 1
        for _ in counted(range(RETURN_TRIES), RETURNING_TO_INT8, on_progress):
            if not pending:
                break
            returned = {layer.index for layer in pending[:block]}
            candidate = evaluate(calibrated.quantize([kept for kept in layers
                                                      if kept.index in reasons and kept.index not in returned]))
            if holds(candidate):  # a block returned: the next one twice as large
                for index in returned:
                    del reasons[index]
                now, pending, block = candidate, pending[block:], 2 * block
            elif block > 1:  # some of it is needed: try its first half
                block //= 2
            else:  # this layer stays float
                pending = pending[1:]
    kept = [layer for layer in layers if layer.index in reasons]
    final = calibrated.quantize(kept)
    reached = evaluate(final)
    rows = [LayerReport(
        layer.name, layer.op, layer.input_shape, 4 * layer.weight_count, layer.int8_weight_bytes,
        sqnr[layer.name], 100 * (alone[layer.index].score - base.score) if alone else None,
        base.error - alone[layer.index].error if alone else None,
        timed[layer.index].float32_s if timed else None, timed[layer.index].int8_s if timed else None,
        "float32" if layer.index in reasons else "int8", reasons.get(layer.index, "budget"),
        cpu_ops.get(layer.index, ())) for layer in layers]
    return MixedChoice(final, rows, evaluate.float_accuracy, base.score, reached.score, budget_points,
                       len(evaluate.x), sorted(node for layer in kept for node in layer.nodes), delegate,
                       evaluate.measure, reached.agreement, min_agreement, latency, agreement_gate)


def _whole_model(calibrated: Calibrated, time_models: Callable[[Sequence[bytes]], Sequence[float]],
                 float_layers: Sequence[QuantLayer]) -> LatencyCheck:
    """All-int8 against these layers float, each file timed whole (the Q/DQ ops around float islands count)."""
    int8_s, float_s = time_models([calibrated.quantize(()), calibrated.quantize(float_layers)])
    return LatencyCheck(len(float_layers), int8_s, float_s, int8_s >= WHOLE_MODEL_GAIN * float_s)


def _worst(sqnr: float | None) -> float:
    """The search's sort key of a layer's SQNR: lowest first, unknown (a layer the debugger could not see) last."""
    return math.inf if sqnr is None or math.isnan(sqnr) else sqnr


def _overlapped(models: Iterable[bytes], evaluate: Evaluator) -> Iterator[Score]:
    """Each model's score, in order, evaluated in a second thread while the next one is quantized: the runtimes
    release the GIL while they run, so a Python quantizer (onnxruntime's) overlaps them (14% less time for
    MobileNetV3Small's ONNX pass on 2 cores; LiteRT's ``mlir_quantize`` holds the GIL, so there, no gain)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[Score] | None = None
        for model in models:
            submitted = pool.submit(evaluate, model)
            if pending is not None:
                yield pending.result()
            pending = submitted
        if pending is not None:
            yield pending.result()


def worst_first(rows: Sequence[LayerReport]) -> list[LayerReport]:
    """The diagnosis order: the lowest SQNR first (the layer int8 itself damages most), then the most harm.

    SQNR is measured on each layer's own input, so it points at the layer that
    ruins a tensor even when keeping that layer float alone recovers little
    (its consumer still reads the ruined quantized tensor).
    """
    return sorted(rows, key=lambda r: (r.sqnr_db, -(r.harm_points or 0.0), -(r.output_error or 0.0)))
