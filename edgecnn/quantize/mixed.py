"""Mixed precision chosen by measurement: which layers stay float, and why.

Start from every layer in int8. A layer whose int8 kernel is measured clearly
slower than its float one (:data:`SLOWER_IN_INT8`) goes float when that costs no
accuracy the budget cares about: the validation accuracy does not fall, or the
drop stays within the budget (a free choice goes to speed; a few images of
validation noise must not keep a slow kernel) (reason ``latency``). Layers
whose int8 ops the runtime's accelerator leaves on the CPU (XNNPACK and int8
HARD_SWISH) are tried float together, and go float (reason ``delegate``) when
the whole candidate model is measured faster and the budget allows it: one
island of CPU ops between delegate partitions may cost less than the float
layers do, so the fact alone does not decide. Then, while the drop against the float
model exceeds the budget, the layer whose float version recovers the most
accuracy goes float (reason ``error``; ties: the smaller output error, then the
cheaper float layer, then graph order), so the choice is the same on every run
with the same inputs. Layers left in int8 carry reason ``budget``.

The loop is the same for every format: a format brings a :class:`Calibrated`
model (TFLite: :mod:`.tflite_layers`, ONNX: :mod:`.onnx_layers`) and a runner
for the :class:`Evaluator`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Collection, Mapping, Protocol, Sequence

import numpy as np

from ..bench.output import seconds
from ..progress import Progress, counted
from .latency import LayerLatency

#: Points of validation accuracy the int8 model may lose against float by default: half the int8 verify
#: gate (1.0 point), so that the gap between the validation split and the test set stays inside the gate.
DEFAULT_MAX_ACCURACY_DROP = 0.5
#: int8 / float32 latency of a layer above which its int8 kernel counts as slower: a margin over timing noise,
#: so that a close call never flips the layer choice between runs.
SLOWER_IN_INT8 = 1.5
#: Whole-model p50 of all-int8 / the delegated candidate above which keeping the CPU-bound layers float is
#: faster: a margin over timing noise, as for :data:`SLOWER_IN_INT8`.
DELEGATE_GAIN = 1.1
#: Images per interpreter call while evaluating candidates.
EVAL_BATCH = 256


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
    harm_points: float  # validation accuracy recovered by keeping only this layer float
    output_error: float  # mean abs probability change vs float recovered by keeping only this layer float
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
    accuracy: float  # validation accuracy with them float
    kept_float: bool

    def to_dict(self) -> dict:
        return {**asdict(self), "ops": list(self.ops)}

    def line(self) -> str:
        """What the measurement decided, in one line (explain, and export's note)."""
        faster = self.int8_s >= DELEGATE_GAIN * self.float_s
        verdict = ("kept float (faster)" if self.kept_float else
                   f"kept int8 ({'float costs more accuracy than the budget' if faster else 'float is not faster'})")
        return (f"XNNPACK leaves int8 {', '.join(self.ops)} of {self.layers} layers on the CPU; whole model at "
                f"batch 1: {seconds(self.int8_s)} with them int8, {seconds(self.float_s)} float "
                f"({100 * self.accuracy:.2f}% validation accuracy): {verdict}")


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

    @property
    def drop_points(self) -> float:
        return 100 * (self.float_accuracy - self.accuracy)

    @property
    def met(self) -> bool:
        return self.drop_points <= self.budget_points + 1e-9

    def float_layers(self) -> list[str]:
        return [layer.name for layer in self.layers if layer.precision != "int8"]

    def manifest_fields(self, validation_source: str) -> dict:
        """The manifest's ``layers`` and ``mixed_precision`` (see edgecnn.bundle.schema)."""
        return {"layers": [{"name": r.name, "op": r.op, "precision": r.precision, "reason": r.reason,
                            "sqnr_db": round(r.sqnr_db, 2) if np.isfinite(r.sqnr_db) else None,
                            "harm_points": round(r.harm_points, 2), "float32_s": r.float32_s, "int8_s": r.int8_s,
                            "weight_bytes_float32": r.weight_bytes_float32, "weight_bytes_int8": r.weight_bytes_int8,
                            "cpu_ops": list(r.cpu_ops)}
                           for r in self.layers],
                "mixed_precision": {"max_accuracy_drop_points": self.budget_points,
                                    "validation_images": self.validation_images,
                                    "validation_source": validation_source, "float_accuracy": self.float_accuracy,
                                    "all_int8_accuracy": self.all_int8_accuracy, "accuracy": self.accuracy,
                                    "met": self.met,
                                    "delegate": None if self.delegate is None else self.delegate.to_dict()}}


class Evaluator:
    """Validation accuracy and output error of candidate models, against the float model's probabilities.

    ``run(model, x)`` gives a candidate file's float probabilities (default: TFLite's :func:`run_tflite`).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, float_probs: np.ndarray,
                 run: Callable[[bytes, np.ndarray], np.ndarray] | None = None) -> None:
        self.x, self.y, self.float_probs = x, y, float_probs
        self.run = run or run_tflite
        self.float_accuracy = float(np.mean(float_probs.argmax(axis=1) == y))

    def __call__(self, model: bytes) -> tuple[float, float]:
        """(accuracy, mean abs probability difference from float)."""
        probs = self.run(model, self.x)
        return float(np.mean(probs.argmax(axis=1) == self.y)), float(np.mean(np.abs(probs - self.float_probs)))


def run_tflite(model: bytes, x: np.ndarray) -> np.ndarray:
    """Float outputs of a float-input TFLite model (mixed models keep float input and output) on a batch."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=1)
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
           latencies: Sequence[LayerLatency] | None = None, *, cpu_ops: Mapping[int, tuple[str, ...]] | None = None,
           time_models: Callable[[Sequence[bytes]], Sequence[float]] | None = None,
           on_progress: Progress | None = None) -> MixedChoice:
    """The greedy choice described in the module docstring; ``latencies`` per layer (None: not measured).

    ``cpu_ops``: per layer index, its int8 ops the accelerator leaves on the CPU;
    ``time_models`` gives the p50 of whole files (None: not timed, so those layers stay int8).
    ``on_progress`` hears of each candidate evaluated: every layer alone, then each greedy round's.
    """
    layers = calibrated.layers
    timed = list(latencies) if latencies is not None and len(latencies) == len(layers) else None
    sqnr = calibrated.layer_sqnr()
    base_acc, base_err = evaluate(calibrated.quantize(()))
    alone = {layer.index: evaluate(calibrated.quantize((layer,)))
             for layer in counted(layers, "measuring harm", on_progress)}
    reasons: dict[int, str] = {}
    accuracy, error = base_acc, base_err

    def with_float(extra: QuantLayer) -> tuple[float, float]:
        chosen = [layer for layer in layers if layer.index in reasons or layer is extra]
        return alone[extra.index] if len(chosen) == 1 else evaluate(calibrated.quantize(chosen))

    budget = budget_points / 100

    def free(acc: float) -> bool:
        """A float choice made for speed is free when accuracy does not fall, or the drop stays within budget."""
        return acc >= accuracy or evaluate.float_accuracy - acc <= budget + 1e-12

    slower = [layer for layer in layers if timed and timed[layer.index].ratio >= SLOWER_IN_INT8]
    for layer in counted(slower, "trying float for speed", on_progress):
        acc, err = with_float(layer)
        if free(acc):
            reasons[layer.index], accuracy, error = "latency", acc, err
    cpu_ops = dict(cpu_ops or {})
    delegate = None
    stranded = [layer for layer in layers if layer.index in cpu_ops and layer.index not in reasons]
    if stranded and time_models is not None:
        current = [layer for layer in layers if layer.index in reasons]
        candidate = sorted([*current, *stranded], key=lambda layer: layer.index)
        acc, err = evaluate(calibrated.quantize(candidate))
        int8_s, float_s = time_models([calibrated.quantize(current), calibrated.quantize(candidate)])
        go_float = int8_s >= DELEGATE_GAIN * float_s and free(acc)
        delegate = DelegateCheck(len(stranded), tuple(sorted({op for layer in stranded for op in cpu_ops[layer.index]})),
                                 int8_s, float_s, acc, go_float)
        if go_float:
            accuracy, error = acc, err
            reasons.update((layer.index, "delegate") for layer in stranded)
    rounds = 0
    while evaluate.float_accuracy - accuracy > budget + 1e-12:
        remaining = [layer for layer in layers if layer.index not in reasons]
        if not remaining:
            break
        rounds += 1
        scored = [(with_float(layer), layer)
                  for layer in counted(remaining, f"choosing float layers (round {rounds})", on_progress)]
        (accuracy, error), best = max(scored, key=lambda item: (
            item[0][0], -item[0][1], -(timed[item[1].index].float32_s - timed[item[1].index].int8_s) if timed else 0,
            -item[1].index))
        reasons[best.index] = "error"
    kept = [layer for layer in layers if layer.index in reasons]
    final = calibrated.quantize(kept)
    accuracy, _ = evaluate(final)
    rows = [LayerReport(
        layer.name, layer.op, layer.input_shape, 4 * layer.weight_count, layer.int8_weight_bytes,
        sqnr[layer.name], 100 * (alone[layer.index][0] - base_acc), base_err - alone[layer.index][1],
        timed[layer.index].float32_s if timed else None, timed[layer.index].int8_s if timed else None,
        "float32" if layer.index in reasons else "int8", reasons.get(layer.index, "budget"),
        cpu_ops.get(layer.index, ())) for layer in layers]
    return MixedChoice(final, rows, evaluate.float_accuracy, base_acc, accuracy, budget_points, len(evaluate.y),
                       sorted(node for layer in kept for node in layer.nodes), delegate)


def worst_first(rows: Sequence[LayerReport]) -> list[LayerReport]:
    """The diagnosis order: the lowest SQNR first (the layer int8 itself damages most), then the most harm.

    SQNR is measured on each layer's own input, so it points at the layer that
    ruins a tensor even when keeping that layer float alone recovers little
    (its consumer still reads the ruined quantized tensor).
    """
    return sorted(rows, key=lambda r: (r.sqnr_db, -r.harm_points, -r.output_error))
