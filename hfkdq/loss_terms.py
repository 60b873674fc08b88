"""The table of distillation loss terms: one row per term, from which everything else derives.

A row says what a term is called (logged as ``loss_<name>``), which `DistillationArguments` field
weighs it, the pure function that computes it, and what it needs from the teacher and the student.
Argument validation, `DistillationTrainer.compute_loss` (including whether the teacher runs at all),
logging and the settings written to ``results.json`` all read this table, so adding a term is one
row here, one pure function in `hfkdq.losses`, and its weight field. The idea is torchdistill's
loss registry and weighted sum, at this project's size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from hfkdq.compatibility import check_equal_head_counts, prepare_for_attention_distillation
from hfkdq.heads import IGNORE_INDEX
from hfkdq.losses import (
    HIDDEN_DISTANCES,
    attention_divergence,
    cross_entropy_loss,
    example_mean,
    hidden_state_distance,
    kd_divergence,
    reduce_loss,
    regression_kd_loss,
    squared_error,
)

TEACHER_OUTPUTS = ("logits", "hidden_states", "attentions")


@dataclass(frozen=True)
class DistillationBatch:
    """What the terms compare for one batch: outputs already paired layer by layer.

    ``token_mask`` marks the positions token-level terms count: real tokens, and for token
    classification labelled ones. ``num_items`` is the Trainer's count of labelled items over the
    gradient-accumulation window (None without labels: terms then average over the batch).
    """

    student_logits: torch.Tensor
    labels: torch.Tensor | None
    token_mask: torch.Tensor | None
    attention_mask: torch.Tensor | None
    token_level: bool
    is_regression: bool
    num_items: torch.Tensor | int | None
    temperature: float
    hidden_loss: str
    teacher_logits: torch.Tensor | None = None
    student_hidden: Sequence[torch.Tensor] = ()
    teacher_hidden: Sequence[torch.Tensor] = ()
    student_attentions: Sequence[torch.Tensor] = ()
    teacher_attentions: Sequence[torch.Tensor] = ()
    label_is_gold: torch.Tensor | None = None
    """Per example: 0 where the label is not gold (an augmented GLUE view, a teacher-labelled transfer example)."""


def _reduce_token_level(per_position: torch.Tensor, batch: DistillationBatch) -> torch.Tensor:
    """Token tasks count labelled tokens; sequence tasks count examples (each its own token mean)."""
    if batch.token_level:
        return reduce_loss(per_position, batch.token_mask, batch.num_items)
    return reduce_loss(example_mean(per_position, batch.attention_mask), None, batch.num_items)


def ce_term(batch: DistillationBatch) -> torch.Tensor:
    """The student's task loss on gold labels (MSE for regression), as its own head computes it."""
    if batch.labels is None:
        raise ValueError("ce_weight > 0 needs gold labels in the batch (a 'labels' column)")
    if batch.label_is_gold is not None:
        gold = batch.label_is_gold.bool()
        if batch.is_regression:
            return reduce_loss(squared_error(batch.student_logits, batch.labels), gold, batch.num_items)
        if batch.token_level:
            gold = gold[:, None].expand_as(batch.labels)
        labels = torch.where(gold, batch.labels, torch.full_like(batch.labels, IGNORE_INDEX))
        return cross_entropy_loss(batch.student_logits, labels, batch.num_items)
    if batch.is_regression:
        return reduce_loss(squared_error(batch.student_logits, batch.labels), None, batch.num_items)
    return cross_entropy_loss(batch.student_logits, batch.labels, batch.num_items)


def kd_term(batch: DistillationBatch) -> torch.Tensor:
    """KL(teacher_T || student_T)·T² on the logits; MSE to the teacher's predictions for regression."""
    if batch.is_regression:
        return regression_kd_loss(batch.student_logits, batch.teacher_logits, batch.num_items)
    per_position = kd_divergence(batch.student_logits, batch.teacher_logits, batch.temperature)
    mask = batch.token_mask if batch.token_level else None
    return reduce_loss(per_position, mask, batch.num_items)


def hidden_term(batch: DistillationBatch) -> torch.Tensor:
    """Mean over the matched layer pairs of the per-token hidden-state distance."""
    per_layer = [
        hidden_state_distance(student, teacher, batch.hidden_loss)
        for student, teacher in zip(batch.student_hidden, batch.teacher_hidden, strict=True)
    ]
    return _reduce_token_level(torch.stack(per_layer).mean(0), batch)


def attention_term(batch: DistillationBatch) -> torch.Tensor:
    """Mean over the matched layer pairs of the per-query attention KL(teacher || student)."""
    per_layer = [
        attention_divergence(student, teacher)
        for student, teacher in zip(batch.student_attentions, batch.teacher_attentions, strict=True)
    ]
    return _reduce_token_level(torch.stack(per_layer).mean(0), batch)


@dataclass(frozen=True)
class LossTerm:
    """One row of the table."""

    name: str
    weight_field: str
    compute: Callable[[DistillationBatch], torch.Tensor]
    default_weight: float
    help: str
    teacher_outputs: frozenset[str] = frozenset()
    """Which teacher outputs the term reads: a subset of `TEACHER_OUTPUTS` (empty: no teacher pass)."""
    check_models: Callable[[Any, Any], None] | None = None
    """Raises before training when student and teacher cannot be compared by this term."""
    prepare_models: Callable[[Any, Any], None] | None = None
    """Adjusts student and teacher so the term can read what it needs (e.g. eager attention)."""

    @property
    def uses_layer_map(self) -> bool:
        """Layer-wise terms compare student layers with the teacher layers the layer map names."""
        return bool(self.teacher_outputs & {"hidden_states", "attentions"})


LOSS_TERMS: dict[str, LossTerm] = {
    term.name: term
    for term in (
        LossTerm(
            "ce",
            "ce_weight",
            ce_term,
            1.0,
            "Weight of the student's task loss on gold labels (cross-entropy; MSE for regression).",
        ),
        LossTerm(
            "kd",
            "kd_weight",
            kd_term,
            1.0,
            "Weight of KL(teacher/T || student/T)·T² on the logits (MSE to the teacher for regression).",
            teacher_outputs=frozenset({"logits"}),
        ),
        LossTerm(
            "hidden",
            "hidden_weight",
            hidden_term,
            0.0,
            "Weight of the hidden-state loss over the layer map (0 = off).",
            teacher_outputs=frozenset({"hidden_states"}),
        ),
        LossTerm(
            "attention",
            "attention_weight",
            attention_term,
            0.0,
            "Weight of the attention-distribution KL(teacher || student) over the layer map (0 = off).",
            teacher_outputs=frozenset({"attentions"}),
            check_models=check_equal_head_counts,
            prepare_models=prepare_for_attention_distillation,
        ),
    )
}

WEIGHT_FIELDS = tuple(term.weight_field for term in LOSS_TERMS.values())


def active_terms(args: Any) -> list[LossTerm]:
    """The terms with a weight > 0, in table order."""
    return [term for term in LOSS_TERMS.values() if getattr(args, term.weight_field) > 0]


def teacher_outputs_needed(terms: Sequence[LossTerm]) -> set[str]:
    """What the teacher must return for these terms; empty means no teacher forward pass at all."""
    return set().union(*(term.teacher_outputs for term in terms))


def hidden_loss_help() -> str:
    """Help text of `hidden_loss`, listing the kinds `HIDDEN_DISTANCES` offers with their docstrings."""
    kinds = "; ".join(
        f"'{name}': {(function.__doc__ or '').strip().rstrip('.')}"
        for name, function in HIDDEN_DISTANCES.items()
    )
    return f"Hidden-state distance. {kinds}."


def distillation_settings(args: Any) -> dict[str, Any]:
    """The fields `DistillationArguments` adds to `TrainingArguments`, for ``results.json``."""
    from transformers import TrainingArguments

    base = {field.name for field in dataclasses.fields(TrainingArguments)}
    return {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(args)
        if field.name not in base and field.init
    }
