"""The benchmark's headline ratios, each with both operands and how they were timed."""
from __future__ import annotations

from typing import Any, Sequence

from .worker import KERAS_MODES, PAIR_BLOCK


def compute_ratios(rows: Sequence[dict[str, Any]], pairs: Sequence[dict[str, Any]] = ()) -> dict[str, dict[str, Any]]:
    """p50 ratios at the smallest batch and thread count, each with both operands and how they were timed.

    ``predictor_overhead:<name>``: Predictor / raw runtime call, from the alternating
    calls of the Predictor case; ``int8_vs_fp32:<backend>``: int8 / float32 export
    through the Predictor, from their side-by-side ``pairs`` (else from their rows);
    ``keras_predict_vs_fastest``, ``keras_call_vs_fastest``: Keras / the fastest
    export's Predictor (a speed-up). Alternation keeps drift in the machine's load
    out of ratios of close figures.
    """
    if not rows:
        return {}
    batch = min(r["batch_size"] for r in rows)
    threads = min(r["threads"] for r in rows)
    at = [r for r in rows if r["batch_size"] == batch and r["threads"] == threads]
    by = {(r["name"], r["mode"]): r for r in at}

    def entry(meaning: str, a: tuple[str, str, float], b: tuple[str, str, float], method: str,
              **extra: Any) -> dict[str, Any]:
        return {"value": a[2] / b[2] if b[2] else None, "meaning": meaning, "batch_size": batch, "threads": threads,
                "method": method, "a": {"name": a[0], "mode": a[1], "p50_s": a[2]},
                "b": {"name": b[0], "mode": b[1], "p50_s": b[2]}, **extra}

    def operand(row: dict[str, Any]) -> tuple[str, str, float]:
        return row["name"], row["mode"], row["latency_s"]["p50"]

    ratios: dict[str, dict[str, Any]] = {}
    for (name, mode), row in by.items():
        paired = row.get("paired_p50_s")
        if mode == "predictor" and paired:
            ratios[f"predictor_overhead:{name}"] = entry(
                "Predictor p50 / raw runtime call p50", (name, mode, paired["predictor"]), (name, "raw", paired["raw"]),
                "alternating calls in one process", paired_p50_s=paired)
    predictors = [r for r in at if r["mode"] == "predictor"]
    for backend in dict.fromkeys(r["backend"] for r in predictors):
        side_by_side = [p for p in pairs if p["backend"] == backend and p["batch_size"] == batch
                        and p["threads"] == threads]
        of = {p: [r for r in predictors if r["backend"] == backend and r["precision"] == p] for p in ("int8", "float32")}
        meaning = "int8 p50 / float32 p50, both through the Predictor"
        if side_by_side:
            (a, b), (pa, pb) = side_by_side[0]["names"], side_by_side[0]["paired_p50_s"]
            ratios[f"int8_vs_fp32:{backend}"] = entry(meaning, (a, "predictor", pa), (b, "predictor", pb),
                                                      f"alternating blocks of {PAIR_BLOCK} calls in one process")
        elif len(of["int8"]) == 1 and len(of["float32"]) == 1:
            ratios[f"int8_vs_fp32:{backend}"] = entry(meaning, operand(of["int8"][0]), operand(of["float32"][0]),
                                                      "each in its own process")
    if predictors:
        fastest = min(predictors, key=lambda r: r["latency_s"]["p50"])
        for mode in KERAS_MODES:
            keras_rows = [r for r in at if r["mode"] == mode]
            if len(keras_rows) == 1:
                ratios[f"{mode.replace('.', '_')}_vs_fastest"] = entry(
                    f"Keras {mode.split('.')[1]} p50 / fastest export's Predictor p50 (speed-up)",
                    operand(keras_rows[0]), operand(fastest), "each in its own process")
    return ratios


def format_ratios(ratios: dict[str, dict[str, Any]]) -> str:
    lines = []
    for key, r in ratios.items():
        value = "-" if r["value"] is None else f"{r['value']:,.0f}x" if r["value"] >= 100 else f"{r['value']:.3f}x"
        lines.append(f"{key}: {value}  ({r['a']['name']} {r['a']['mode']} {r['a']['p50_s'] * 1e6:.0f} µs / "
                     f"{r['b']['name']} {r['b']['mode']} {r['b']['p50_s'] * 1e6:.0f} µs, batch {r['batch_size']}, "
                     f"{r['threads']} thread{'s' if r['threads'] != 1 else ''})")
    return "\n".join(lines)
