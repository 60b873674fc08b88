"""Distillation losses as pure, mask-aware tensor functions.

Every function takes the tensors it compares and an optional boolean ``mask`` of the positions that
count (padding and, for token classification, label -100 excluded), and returns a scalar: the mean
over counted positions. Keeping them free of Trainer state makes them testable against hand-computed
values and reusable outside `DistillationTrainer`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-12


def _masked_mean(per_position: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``per_position`` over positions where ``mask`` is true (all positions without a mask)."""
    if mask is None:
        return per_position.mean()
    mask = mask.to(per_position.dtype)
    while mask.dim() < per_position.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.expand_as(per_position)
    # An all-masked batch contributes zero rather than NaN, so one empty batch cannot poison training.
    return (per_position * mask).sum() / mask.sum().clamp_min(1.0)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(teacher_T || student_T) · T², softmax over the last (class) dimension.

    The class axis is the last one so the same function serves sequence classification
    (batch, classes) and token classification (batch, tokens, classes). The T² factor keeps the
    gradient scale independent of the temperature (Hinton et al., 2015).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    student_log_probs = F.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    per_position = (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(-1)
    return _masked_mean(per_position, mask) * temperature**2


def regression_kd_loss(student_predictions: torch.Tensor, teacher_predictions: torch.Tensor) -> torch.Tensor:
    """MSE between student and teacher predictions: the KD term for regression heads (STS-B)."""
    return F.mse_loss(student_predictions.float().reshape(-1), teacher_predictions.float().reshape(-1))


def hidden_state_loss(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    mask: torch.Tensor | None = None,
    kind: str = "mse",
) -> torch.Tensor:
    """Distance between (batch, tokens, width) hidden states of equal width, per token.

    ``mse`` averages the squared error over the width (TinyBERT); ``cosine`` is 1 - cosine
    similarity (DistilBERT), which ignores scale differences between the two networks.
    """
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(
            f"hidden states differ in shape: student {tuple(student_hidden.shape)} vs teacher "
            f"{tuple(teacher_hidden.shape)}; project the student's states to the teacher's width first"
        )
    student_hidden, teacher_hidden = student_hidden.float(), teacher_hidden.float()
    if kind == "mse":
        per_position = (student_hidden - teacher_hidden).pow(2).mean(-1)
    elif kind == "cosine":
        per_position = 1.0 - F.cosine_similarity(student_hidden, teacher_hidden, dim=-1, eps=1e-8)
    else:
        raise ValueError(f"unknown hidden-state loss {kind!r}; use 'mse' or 'cosine'")
    return _masked_mean(per_position, mask)


def attention_loss(
    student_attention: torch.Tensor,
    teacher_attention: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(teacher || student) between attention distributions (batch, heads, queries, keys).

    Each query row is a distribution over keys (MiniLM's self-attention distillation); ``mask``
    selects the query positions that count. Padded keys carry ~0 probability in both models.
    """
    if student_attention.shape != teacher_attention.shape:
        raise ValueError(
            f"attention maps differ in shape: student {tuple(student_attention.shape)} vs teacher "
            f"{tuple(teacher_attention.shape)} (batch, heads, queries, keys); attention distillation "
            "needs the same number of heads"
        )
    teacher = teacher_attention.float().clamp_min(_EPS)
    student = student_attention.float().clamp_min(_EPS)
    per_query = (teacher * (teacher.log() - student.log())).sum(-1)  # (batch, heads, queries)
    per_query = per_query.mean(1)  # average over heads -> (batch, queries)
    return _masked_mean(per_query, mask)
