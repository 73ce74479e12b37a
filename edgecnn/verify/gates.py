"""The gate each export must meet, by precision, and the user's overrides of it."""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import EdgecnnError


@dataclass(frozen=True)
class Thresholds:
    """A gate; ``None`` means that figure is not gated."""

    atol: float | None = None  # max abs probability difference
    #: top-1 agreement with the reference, percent, on the images the reference is not near a tie on
    #: (edgecnn.metrics.NEAR_TIE_MARGIN): a flip of a near tie says nothing about the export
    min_agreement_pct: float | None = None
    max_accuracy_drop_points: float | None = None  # accuracy below the reference, percentage points

    def check(self, *, max_abs_diff: float, agreement: float, accuracy_delta_points: float) -> list[str]:
        """One message per threshold that is not met (empty when the gate passes); ``agreement``: the confident
        one (see :data:`min_agreement_pct`)."""
        failures = []
        if self.atol is not None and not max_abs_diff <= self.atol:
            failures.append(f"max abs diff {max_abs_diff:.3g} > {self.atol:g}")
        if self.min_agreement_pct is not None and not 100 * agreement >= self.min_agreement_pct - 1e-9:
            failures.append(f"agreement {100 * agreement:.2f}% < {self.min_agreement_pct:g}% (near ties not counted)")
        drop = -accuracy_delta_points
        if self.max_accuracy_drop_points is not None and not drop <= self.max_accuracy_drop_points + 1e-9:
            failures.append(f"accuracy drop {drop:.2f} points > {self.max_accuracy_drop_points:g}")
        return failures

    def to_dict(self) -> dict[str, float | None]:
        return {"atol": self.atol, "min_agreement_pct": self.min_agreement_pct,
                "max_accuracy_drop_points": self.max_accuracy_drop_points}


#: Default gates per precision (the issue's acceptance thresholds).
GATES: dict[str, Thresholds] = {
    "float32": Thresholds(atol=1e-4, min_agreement_pct=99.9),
    "float16": Thresholds(atol=1e-2, min_agreement_pct=99.5),
    "dynamic": Thresholds(min_agreement_pct=98.5, max_accuracy_drop_points=1.0),
    "int8": Thresholds(min_agreement_pct=98.5, max_accuracy_drop_points=1.0),
    # 16-bit activations are the fallback for models int8 cannot serve: held to a tighter gate than int8.
    "int16x8": Thresholds(min_agreement_pct=99.5, max_accuracy_drop_points=0.3),
}
_PRECISION_ALIASES = {"fp32": "float32", "fp16": "float16", "dynamic-range": "dynamic", "dynamic_range": "dynamic",
                      "uint8": "int8", "full-int8": "int8"}


def gate_name(precision: str | None) -> str | None:
    """The :data:`GATES` key of a precision, its alias resolved."""
    return _PRECISION_ALIASES.get(precision, precision) if precision else None


def thresholds_for(precision: str, *, atol: float | None = None, min_agreement: float | None = None,
                   max_accuracy_drop: float | None = None) -> Thresholds:
    """The default gate of ``precision``, with each given override applied to it."""
    gate = GATES.get(gate_name(precision))
    if gate is None:
        raise EdgecnnError(f"no default gate for precision '{precision}' (known: {', '.join(GATES)})")
    overrides = {"atol": atol, "min_agreement_pct": min_agreement, "max_accuracy_drop_points": max_accuracy_drop}
    return replace(gate, **{k: v for k, v in overrides.items() if v is not None})


def check_overrides(atol: float | None, min_agreement: float | None, max_accuracy_drop: float | None) -> None:
    if atol is not None and not atol >= 0:
        raise EdgecnnError(f"--atol must be 0 or more, got {atol}")
    if min_agreement is not None and not 0 <= min_agreement <= 100:
        raise EdgecnnError(f"--min-agreement is a percentage in 0..100, got {min_agreement}")
    if max_accuracy_drop is not None and not max_accuracy_drop >= 0:
        raise EdgecnnError(f"--max-accuracy-drop must be 0 or more points, got {max_accuracy_drop}")
