"""The push's quality gate: which variants may not be published under `--max_metric_drop`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class GateFailure:
    """A variant the quality gate kept back: how much it lost (points), or why it could not be judged."""

    variant: str
    drop_points: float | None
    allowed: float
    metric: str | None
    reason: str = ""

    def describe(self) -> str:
        if self.drop_points is None:
            return f"variant {self.variant!r} not pushed: {self.reason} (--max_metric_drop {self.allowed:g})"
        return (
            f"variant {self.variant!r} not pushed: it lost {self.drop_points:.2f} {self.metric} points vs the fp32 "
            f"student, more than the allowed {self.allowed:g}"
        )


def _variant_rows(quantized_results: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    rows = (quantized_results or {}).get("variants") or []
    return {row["name"]: row for row in rows if row.get("role") == "variant"}


def gate(
    variants: Mapping[str, Path], quantized_results: Mapping[str, Any] | None, max_metric_drop: float | None
) -> list[GateFailure]:
    """The variants that may not be pushed under `max_metric_drop` (points lost vs the fp32 student).

    A variant without a measured drop cannot pass a gate: publishing it would claim a check never made.
    """
    if max_metric_drop is None:
        return []
    rows, metric = _variant_rows(quantized_results), (quantized_results or {}).get("main_metric")
    failures = []
    for name in variants:
        row = rows.get(name)
        points = ((row or {}).get("deltas") or {}).get("metric_points")
        if row is None:
            failures.append(
                GateFailure(name, None, max_metric_drop, metric, "no measurement in quantized/results.json")
            )
        elif points is None or not math.isfinite(points):
            failures.append(
                GateFailure(name, None, max_metric_drop, metric, f"its measured {metric} drop is {points}")
            )
        elif -points > max_metric_drop:
            failures.append(GateFailure(name, -points, max_metric_drop, metric))
    return failures
