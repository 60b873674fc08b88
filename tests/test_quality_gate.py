"""`hfkdq.quality_gate`: the one rule `hfkdq quantize`, the recipes' --quantize and `hfkdq push` apply.

A variant passes only with a finite measured drop within the allowance; missing, NaN and infinite
drops never pass, whatever the allowance.
"""

from __future__ import annotations

import math

import pytest

from hfkdq.quality_gate import GateFailure, gate, measured_drop


def variant(name: str, points) -> dict:
    """A quantization results row; `points` is the metric change vs fp32 (negative: the variant lost)."""
    return {"name": name, "role": "variant", "deltas": {"metric_points": points}}


FP32 = {"name": "fp32", "role": "student", "deltas": {"metric_points": 0.0}}


def test_a_drop_within_the_allowance_passes_and_one_above_it_fails():
    rows = [FP32, variant("exact", -1.0), variant("better", 0.5), variant("worse", -1.25)]
    assert gate(rows, 1.0, "f1") == [GateFailure("worse", 1.25, 1.0, "f1")]


@pytest.mark.parametrize("points", [None, math.nan, math.inf, -math.inf, "0.1", True])
def test_a_variant_without_a_finite_drop_never_passes(points):
    (failure,) = gate([FP32, variant("broken", points)], 1e9, "f1")
    assert failure.variant == "broken" and failure.drop_points is None
    assert f"has a measured f1 drop of {points}" in failure.describe()


def test_a_row_without_deltas_fails():
    (failure,) = gate([{"name": "bare", "role": "variant"}], 5.0, "accuracy")
    assert failure.reason == "has a measured accuracy drop of None"


def test_a_named_variant_without_a_row_fails():
    """`hfkdq push` judges the variant directories it found; one never measured cannot be published."""
    failures = gate([FP32, variant("measured", -0.1)], 1.0, "f1", variants=["measured", "unmeasured"])
    assert [(f.variant, f.reason) for f in failures] == [("unmeasured", "has no measurement")]


def test_without_an_allowance_nothing_is_judged():
    assert gate([variant("broken", math.nan)], None, "f1") == []


def test_only_variant_rows_are_judged():
    teacher = {"name": "teacher", "role": "teacher", "deltas": {"metric_points": -30.0}}
    assert gate([FP32, teacher], 1.0, "f1") == []


def test_messages_say_what_was_lost_and_what_was_allowed():
    failure = GateFailure("bnb-4bit", 3.254, 1.0, "f1")
    assert failure.describe() == "variant 'bnb-4bit' lost 3.25 f1 points vs the fp32 student (allowed: 1.00)"
    assert failure.describe("not pushed").startswith("variant 'bnb-4bit' not pushed: lost 3.25 f1 points")
    assert failure.as_record() == {"variant": "bnb-4bit", "drop_points": 3.254, "allowed": 1.0}


def test_the_drop_is_the_negated_metric_change():
    assert measured_drop(variant("x", -2.5)) == 2.5
    assert measured_drop(variant("x", 1.0)) == -1.0
    assert measured_drop(variant("x", math.nan)) is None
