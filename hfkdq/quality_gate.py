"""The quality gate: may a quantized variant stand (`hfkdq quantize`, a recipe's `--quantize`) or be
published (`hfkdq push`, `--push_to_hub`) under `--max_metric_drop`?

One rule, one function, for all of them: a variant passes only when its measured drop against the fp32
student on its own device is a finite number no larger than the allowance. A drop that is missing, NaN
or infinite never passes: a broken variant (NaN logits, a metric that could not be computed) must not
slip through because the comparison `nan > allowed` is false, and publishing it would claim a check
that was never made. Input is the variant rows of a quantization `results.json` (`deltas.metric_points`,
negative when the variant lost points).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GateFailure:
    """A variant the gate stops: how many points it lost, or why it could not be judged."""

    variant: str
    drop_points: float | None
    """Points lost against the fp32 student; None when no finite drop was measured (see `reason`)."""
    allowed: float
    metric: str | None
    reason: str = ""

    @property
    def problem(self) -> str:
        """What is wrong, without the variant's name: 'lost 3.25 f1 points vs the fp32 student (allowed: 1.00)'."""
        if self.drop_points is None:
            return f"{self.reason}, so it cannot pass the gate (allowed drop: {self.allowed:.2f})"
        return f"lost {self.drop_points:.2f} {self.metric} points vs the fp32 student (allowed: {self.allowed:.2f})"

    def describe(self, consequence: str = "") -> str:
        """'variant 'x' lost ...', or with a consequence: 'variant 'x' not pushed: lost ...'."""
        return f"variant {self.variant!r} {consequence + ': ' if consequence else ''}{self.problem}"

    def as_record(self) -> dict[str, Any]:
        """The JSON form a quantization results.json keeps under "violations"."""
        record = {"variant": self.variant, "drop_points": self.drop_points, "allowed": self.allowed}
        return record | ({"reason": self.reason} if self.reason else {})


def measured_drop(row: Mapping[str, Any]) -> float | None:
    """Points a variant row lost vs its fp32 reference (positive = worse); None unless finite."""
    points = (row.get("deltas") or {}).get("metric_points")
    if isinstance(points, bool) or not isinstance(points, int | float) or not math.isfinite(points):
        return None
    return -float(points)


def gate(
    rows: Iterable[Mapping[str, Any]],
    max_metric_drop: float | None,
    metric: str | None,
    variants: Iterable[str] | None = None,
) -> list[GateFailure]:
    """The variants that fail `max_metric_drop` (None: no gate, nothing fails).

    `rows` are a quantization results' rows (only `role == "variant"` rows are judged); `variants`
    names the variants to judge (default: every variant row), and one without a row fails too.
    """
    if max_metric_drop is None:
        return []
    by_name = {row["name"]: row for row in rows if row.get("role") == "variant"}
    failures = []
    for name in by_name if variants is None else variants:
        row = by_name.get(name)
        if row is None:
            failures.append(GateFailure(name, None, max_metric_drop, metric, "has no measurement"))
            continue
        drop = measured_drop(row)
        if drop is None:
            points = (row.get("deltas") or {}).get("metric_points")
            reason = f"has a measured {metric} drop of {points}"
            failures.append(GateFailure(name, None, max_metric_drop, metric, reason))
        elif drop > max_metric_drop:
            failures.append(GateFailure(name, drop, max_metric_drop, metric))
    return failures
