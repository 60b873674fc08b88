"""Which student layer learns from (and is initialised from) which teacher layer.

Layers are 0-based transformer blocks. ``uniform`` spreads the student over the teacher so the
student's last layer meets the teacher's last layer (TinyBERT's mapping: 3 of 6 -> [1, 3, 5]);
``last`` pairs only the final layers (MiniLM's last-layer attention transfer); an explicit list
names one teacher layer per student layer.
"""

from __future__ import annotations

from collections.abc import Sequence

LayerSpec = str | Sequence[int]


def parse_layer_spec(spec: LayerSpec) -> str | list[int]:
    """Accept 'uniform', 'last', a list of ints, or a comma-separated string such as '1,3,5'."""
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text in ("uniform", "last"):
            return text
        try:
            return [int(part) for part in text.replace("[", "").replace("]", "").split(",") if part.strip()]
        except ValueError:
            raise ValueError(
                f"layer map {spec!r} is not 'uniform', 'last' or a comma-separated list of teacher layers"
            ) from None
    return [int(layer) for layer in spec]


def uniform_teacher_layers(num_student_layers: int, num_teacher_layers: int) -> list[int]:
    """Teacher layer for each student layer, evenly spaced and ending at the teacher's last layer."""
    if num_student_layers < 1:
        raise ValueError(f"a student needs at least one layer, got {num_student_layers}")
    if num_student_layers > num_teacher_layers:
        raise ValueError(
            f"student has {num_student_layers} layers but the teacher only {num_teacher_layers}; "
            "a uniform map needs a student no deeper than its teacher"
        )
    return [(i + 1) * num_teacher_layers // num_student_layers - 1 for i in range(num_student_layers)]


def resolve_layer_map(
    spec: LayerSpec, num_student_layers: int, num_teacher_layers: int
) -> list[tuple[int, int]]:
    """(student layer, teacher layer) pairs for the hidden-state and attention losses."""
    parsed = parse_layer_spec(spec)
    if parsed == "uniform":
        teacher_layers = uniform_teacher_layers(num_student_layers, num_teacher_layers)
        return list(enumerate(teacher_layers))
    if parsed == "last":
        return [(num_student_layers - 1, num_teacher_layers - 1)]
    if len(parsed) != num_student_layers:
        raise ValueError(
            f"explicit layer map {parsed} names {len(parsed)} teacher layers but the student has "
            f"{num_student_layers}; give one teacher layer per student layer"
        )
    outside = [layer for layer in parsed if not 0 <= layer < num_teacher_layers]
    if outside:
        raise ValueError(
            f"layer map {parsed} points outside the teacher: layers {outside} do not exist in a "
            f"{num_teacher_layers}-layer teacher (valid: 0..{num_teacher_layers - 1})"
        )
    return list(enumerate(parsed))
