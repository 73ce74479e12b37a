"""`edgecnn explain`: the per-layer quantization table of a Keras model, as text and as JSON.

One table per int8 format (:data:`edgecnn.quantize.CHOOSERS`), one row per
quantizable layer, worst first: SQNR of the quantization it adds on held-out
images, the validation accuracy that keeping it float recovers, its float32 and
int8 latency (each layer timed alone), its weight bytes, and the precision
mixed precision gives it with the reason. Imports TensorFlow.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from .bench.output import seconds
from .fileio import format_bytes
from .progress import Progress
from .quantize.mixed import DEFAULT_MAX_ACCURACY_DROP, MixedChoice, worst_first


def explain_model(model_path: str | os.PathLike, *, formats: Iterable[str] | None = None,
                  max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
                  calibration_samples: int = 500, data: str | os.PathLike | None = None,
                  input_range: str | None = None, measure_latency: bool = True,
                  unsafe: bool = False, on_progress: Progress | None = None) -> tuple[dict[str, MixedChoice], str]:
    """Measure every layer of the ``.keras`` model for each int8 format (default: all); the choices by format
    and where validation came from. ``on_progress`` hears each layer measured (minutes on a real network)."""
    from .errors import EdgecnnError
    from .export import load_source
    from .quantize import CHOOSERS

    formats = set(CHOOSERS if formats is None else formats)
    unknown = sorted(formats - set(CHOOSERS))
    if unknown:
        raise EdgecnnError(f"explain knows no format {', '.join(unknown)} (choose from {', '.join(CHOOSERS)})")
    if not max_accuracy_drop >= 0:
        raise EdgecnnError(f"--max-accuracy-drop must be 0 or more points, got {max_accuracy_drop}")
    source, _ = load_source(Path(model_path), data, calibrated=True, unsafe=unsafe, input_range=input_range,
                            calibration_samples=calibration_samples)
    choices = {name: CHOOSERS[name](source, max_accuracy_drop, measure_latency=measure_latency, on_progress=on_progress)
               for name in CHOOSERS if name in formats}
    return choices, source.validation_source()


def explain_json(choices: dict[str, MixedChoice], validation_source: str) -> dict[str, Any]:
    """Everything measured, per format, worst layer first (the ``--json`` file)."""
    return {"exports": {name: {"format": name, "layers": [row.to_dict() for row in worst_first(choice.layers)],
                               **choice.manifest_fields(validation_source)["mixed_precision"],
                               "drop_points": choice.drop_points}
                        for name, choice in choices.items()}}


def explain_tables(choices: dict[str, MixedChoice]) -> str:
    """One titled table per format, in registry order."""
    return "\n\n".join(f"{name}\n{explain_table(choice)}" for name, choice in choices.items())


def explain_table(choice: MixedChoice) -> str:
    """The terminal table, worst layer first, and the accuracy it comes to."""
    head = ["layer", "op", "input", "weights f32", "weights int8", "SQNR dB", "harm pts", "float32", "int8",
            "int8/f32", "precision", "reason"]
    rows = [[r.name, r.op, "x".join(map(str, r.input_shape)), format_bytes(r.weight_bytes_float32),
             format_bytes(r.weight_bytes_int8), f"{r.sqnr_db:.1f}", f"{r.harm_points:+.2f}", seconds(r.float32_s),
             seconds(r.int8_s), "-" if r.float32_s is None else f"{r.int8_s / r.float32_s:.2f}x", r.precision,
             r.reason] for r in worst_first(choice.layers)]
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [head, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    verdict = "within" if choice.met else "OVER"
    if choice.measure == "agreement":
        scores = f"agreement with float ({choice.validation_images} unlabelled images): "
    else:
        scores = f"accuracy ({choice.validation_images} images): float {100 * choice.float_accuracy:.2f}%, "
    agreement = "" if choice.agreement is None else (f", agreement with float {100 * choice.agreement:.2f}% "
                                                     "(near ties not counted)")
    if choice.min_agreement is not None:
        agreement += f" against {choice.agreement_target()}"
    lines.append(f"validation {scores}all int8 {100 * choice.all_int8_accuracy:.2f}%, "
                 f"mixed {100 * choice.accuracy:.2f}% (drop {choice.drop_points:.2f} points, {verdict} the budget of "
                 f"{choice.budget_points:g}){agreement}")
    lines += [check.line() for check in (choice.latency, choice.delegate) if check is not None]
    return "\n".join(lines)

