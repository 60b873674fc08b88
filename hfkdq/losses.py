"""Distillation losses as pure, mask-aware tensor functions.

Each loss is a per-position function (what one token or one example contributes) followed by one
reduction, `reduce_loss`. The reduction either averages over the counted positions (``num_items``
None) or divides their sum by ``num_items``: the count of labelled items in the whole
gradient-accumulation window, which the Trainer passes to `compute_loss`. The second form is what
makes 4 accumulated micro-batches give the same update as one batch 4x larger (TRL's GKD does the
same), because a mean per micro-batch would weight the tokens of short micro-batches more.

No Trainer state and no I/O here: the functions are tested against hand-computed values and can be
reused outside `DistillationTrainer`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from hfkdq.heads import IGNORE_INDEX

_EPS = 1e-12


def reduce_loss(
    per_position: torch.Tensor,
    mask: torch.Tensor | None = None,
    num_items: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Sum of the counted positions divided by ``num_items``, or their mean when it is None.

    Counted positions are selected before summing, so a NaN or inf at a masked (padding, label
    -100) position cannot leak into the loss the way NaN·0 would. No counted position gives 0
    (still attached to the graph), so one empty batch cannot poison training.
    """
    values = per_position if mask is None else per_position[mask.bool()]
    if num_items is None:
        return values.mean() if values.numel() else values.sum()
    # A window whose labels are all -100 counts 0 items: its loss is 0, not 0/0.
    if isinstance(num_items, torch.Tensor):
        return values.sum() / num_items.clamp_min(1)
    return values.sum() / max(num_items, 1)


def example_mean(per_position: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(batch, tokens) -> (batch,): each example's mean over its real tokens.

    For sequence classification the counted items are examples, not tokens, so token-level terms
    (hidden states, attention) are first averaged within each example.
    """
    if mask is None:
        return per_position.mean(-1)
    mask = mask.bool()
    summed = torch.where(mask, per_position, torch.zeros_like(per_position)).sum(-1)
    return summed / mask.sum(-1).clamp_min(1)


def kd_divergence(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL(teacher_T || student_T) · T² per position, softmax over the last (class) dimension.

    The class axis is the last one so the same function serves sequence classification
    (batch, classes) and token classification (batch, tokens, classes). The T² factor keeps the
    gradient scale independent of the temperature (Hinton et al., 2015). Classes the teacher gives
    probability 0 (a ``-inf`` logit) contribute 0, as in `torch.nn.KLDivLoss`, not NaN.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    student_log_probs = F.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    teacher_probs = teacher_log_probs.exp()
    pointwise = teacher_probs * (teacher_log_probs - student_log_probs)
    # Only an exact zero probability is dropped: a NaN from a broken teacher must surface, not vanish.
    pointwise = torch.where(teacher_probs == 0, torch.zeros_like(pointwise), pointwise)
    return pointwise.sum(-1) * temperature**2


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
    num_items: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """KL(teacher_T || student_T) · T², reduced over the counted positions (see `kd_divergence`)."""
    return reduce_loss(kd_divergence(student_logits, teacher_logits, temperature), mask, num_items)


def squared_error(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example squared error of (batch,) or (batch, 1) regression outputs."""
    return (predictions.float().reshape(-1) - targets.float().reshape(-1)).pow(2)


def regression_kd_loss(
    student_predictions: torch.Tensor,
    teacher_predictions: torch.Tensor,
    num_items: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """MSE between student and teacher predictions: the KD term for regression heads (STS-B)."""
    return reduce_loss(squared_error(student_predictions, teacher_predictions), None, num_items)


def cross_entropy_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    num_items: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Cross-entropy on gold labels, ignoring label -100; equals the HF heads' own loss without ``num_items``."""
    per_position = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    return reduce_loss(per_position, labels.reshape(-1) != IGNORE_INDEX, num_items)


def mse_distance(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
    """Squared error averaged over the width (TinyBERT)."""
    return (student_hidden - teacher_hidden).pow(2).mean(-1)


def cosine_distance(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity (DistilBERT): ignores scale differences between the two networks."""
    return 1.0 - F.cosine_similarity(student_hidden, teacher_hidden, dim=-1, eps=1e-8)


HIDDEN_DISTANCES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": mse_distance,
    "cosine": cosine_distance,
}
"""The hidden-state distances by name: `DistillationArguments.hidden_loss` takes these keys."""


def hidden_state_distance(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, kind: str = "mse"
) -> torch.Tensor:
    """Per-token distance between (batch, tokens, width) hidden states of equal width."""
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(
            f"hidden states differ in shape: student {tuple(student_hidden.shape)} vs teacher "
            f"{tuple(teacher_hidden.shape)}; project the student's states to the teacher's width first"
        )
    if kind not in HIDDEN_DISTANCES:
        raise ValueError(f"unknown hidden-state loss {kind!r}; use one of {', '.join(HIDDEN_DISTANCES)}")
    return HIDDEN_DISTANCES[kind](student_hidden.float(), teacher_hidden.float())


def hidden_state_loss(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    mask: torch.Tensor | None = None,
    kind: str = "mse",
    num_items: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """`hidden_state_distance` reduced over the counted tokens."""
    return reduce_loss(hidden_state_distance(student_hidden, teacher_hidden, kind), mask, num_items)


def attention_divergence(student_attention: torch.Tensor, teacher_attention: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per query, averaged over heads: (batch, heads, queries, keys) -> (batch, queries).

    Each query row is a distribution over keys (MiniLM's self-attention distillation). Padded keys
    carry ~0 probability in both models.
    """
    if student_attention.shape != teacher_attention.shape:
        raise ValueError(
            f"attention maps differ in shape: student {tuple(student_attention.shape)} vs teacher "
            f"{tuple(teacher_attention.shape)} (batch, heads, queries, keys); attention distillation "
            "needs the same number of heads"
        )
    teacher = teacher_attention.float().clamp_min(_EPS)
    student = student_attention.float().clamp_min(_EPS)
    return (teacher * (teacher.log() - student.log())).sum(-1).mean(1)


def attention_loss(
    student_attention: torch.Tensor,
    teacher_attention: torch.Tensor,
    mask: torch.Tensor | None = None,
    num_items: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """`attention_divergence` reduced over the counted query positions."""
    return reduce_loss(attention_divergence(student_attention, teacher_attention), mask, num_items)
