"""Which teacher layers a copied student starts from: named strategies, measured in `benchmarks/kd_study.py`.

This is the student's initialisation, not the loss layer map (`layer_map`), which says which teacher
layer each student layer is compared with by the hidden-state and attention terms. The two were one
setting once; they answer different questions. Dropping the top layers is often best (Sajjad et al.,
2020): the top of a fine-tuned teacher is the most task-specific, the bottom the most reusable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hfkdq.layer_map import parse_layer_spec, uniform_teacher_layers


def _bottom(num_layers: int, num_teacher_layers: int) -> list[int]:
    return list(range(num_layers))


def _alternate(num_layers: int, num_teacher_layers: int) -> list[int]:
    stride = num_teacher_layers // num_layers
    return [index * stride for index in range(num_layers)]


def _last(num_layers: int, num_teacher_layers: int) -> list[int]:
    return list(range(num_teacher_layers - num_layers, num_teacher_layers))


INIT_STRATEGIES: dict[str, Callable[[int, int], list[int]]] = {
    "bottom": _bottom,
    "alternate": _alternate,
    "top-aligned": uniform_teacher_layers,
    "last": _last,
}
"""bottom: teacher layers 0..k-1. alternate: every (n // k)-th from 0 (DistilBERT; 3 of 6 -> 0, 2, 4).
top-aligned: evenly spaced, ending at the teacher's last layer (3 of 6 -> 1, 3, 5). last: the top k."""

ALIASES = {"uniform": "top-aligned"}
"""Earlier name of top-aligned, still accepted."""

DEFAULT_STUDENT_NUM_LAYERS = 3
"""Depth of a student copied from the teacher when --student_num_layers is not given."""

DEFAULT_STUDENT_INIT = "alternate"
"""The strategy with the best mean over BTC, CoNLL-2003, SST-2 and RTE (benchmarks/results/kd_study)."""


def init_help() -> str:
    return (
        f"Teacher layers the student is copied from: {', '.join(INIT_STRATEGIES)} "
        "(bottom: 0..k-1; alternate: 0, 2, 4, ... as DistilBERT; top-aligned: 1, 3, 5 for 3 of 6; "
        "last: the top k) or an explicit list such as '0,2,4'."
    )


def choose_init_layers(spec: str | Sequence[int], num_layers: int, num_teacher_layers: int) -> list[int]:
    """The teacher layer each student layer is copied from, validated against both depths."""
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"a student needs at least one layer, got student_num_layers={num_layers!r}")
    if num_layers > num_teacher_layers:
        raise ValueError(
            f"a {num_layers}-layer student cannot be copied from a {num_teacher_layers}-layer teacher; "
            f"use at most {num_teacher_layers} layers"
        )
    if isinstance(spec, str):
        name = ALIASES.get(spec.strip().lower(), spec.strip().lower())
        if name in INIT_STRATEGIES:
            return INIT_STRATEGIES[name](num_layers, num_teacher_layers)
        if not any(character.isdigit() for character in name):
            raise ValueError(
                f"unknown student initialisation {spec!r}: use one of {', '.join(INIT_STRATEGIES)} "
                "or a list of teacher layers such as '0,2,4'"
            )
    layers = parse_layer_spec(spec)
    if len(layers) != num_layers:
        raise ValueError(
            f"student_layers {layers} names {len(layers)} teacher layers for a {num_layers}-layer student; "
            "give one teacher layer per student layer"
        )
    outside = [layer for layer in layers if not 0 <= layer < num_teacher_layers]
    if outside:
        raise ValueError(
            f"student_layers {layers}: layers {outside} do not exist in a {num_teacher_layers}-layer teacher "
            f"(valid: 0..{num_teacher_layers - 1})"
        )
    repeated = sorted({layer for layer in layers if layers.count(layer) > 1})
    if repeated:
        raise ValueError(f"student_layers {layers} repeats teacher layers {repeated}: name each layer once")
    return layers
