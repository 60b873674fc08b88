"""Word alignment between two tokenizations of the same words: pure functions, no tokenizer calls.

A teacher and a student with different tokenizers split the same word into different sub-tokens
(MPNet's ids are BERT-uncased's shifted by four, a cased WordPiece splits "Montpellier" where an
uncased one does not), so their token positions cannot be compared, but their words can. Each word
is represented by its first sub-token on each side (the position NER labels sit on), and a word that
either side lost to truncation is left out on both, so every word that both models read is scored
exactly once on each side. Token ids are never compared across tokenizers.

`align_words` pairs the positions of one example (from fast tokenizers' ``word_ids``);
`to_student_frame` moves a batch of teacher outputs onto the student's token positions, so the
loss terms compare tensors laid out as the student's tokens, exactly as with a shared tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

NO_POSITION = -1
"""Padding of a position list: no word here."""


def first_token_positions(word_ids: Sequence[int | None]) -> dict[int, int]:
    """Word index -> position of its first sub-token; special tokens (word id None) are skipped."""
    positions: dict[int, int] = {}
    for position, word in enumerate(word_ids):
        if word is not None and word not in positions:
            positions[word] = position
    return positions


def align_words(
    teacher_word_ids: Sequence[int | None], student_word_ids: Sequence[int | None]
) -> tuple[list[int], list[int]]:
    """Teacher and student first-sub-token positions of every word both sides kept, in word order.

    A word one side truncated (or mapped to no token) appears on neither list: it is masked on both
    sides, so neither model is taught about a word the other did not read.
    """
    teacher = first_token_positions(teacher_word_ids)
    student = first_token_positions(student_word_ids)
    words = sorted(teacher.keys() & student.keys())
    return [teacher[word] for word in words], [student[word] for word in words]


def to_student_frame(
    teacher_values: torch.Tensor,
    teacher_positions: torch.Tensor,
    student_positions: torch.Tensor,
    student_length: int,
) -> torch.Tensor:
    """Teacher per-token values placed at the student's positions of the same words.

    ``teacher_values`` is (batch, teacher tokens, features); the position tensors are (batch, words),
    padded with `NO_POSITION`. Returns (batch, ``student_length``, features), zero wherever no
    aligned word sits (`aligned_mask` marks the others).
    """
    batch, _, width = teacher_values.shape
    gathered = teacher_values.gather(1, teacher_positions.clamp(min=0).unsqueeze(-1).expand(-1, -1, width))
    target = _target_columns(student_positions, student_length)
    placed = teacher_values.new_zeros(batch, student_length + 1, width)
    placed.scatter_(1, target.unsqueeze(-1).expand(-1, -1, width), gathered)
    return placed[:, :student_length]


def aligned_mask(student_positions: torch.Tensor, student_length: int) -> torch.Tensor:
    """(batch, ``student_length``) booleans: True at the student's first sub-token of an aligned word."""
    target = _target_columns(student_positions, student_length)
    mask = torch.zeros(target.shape[0], student_length + 1, dtype=torch.bool, device=target.device)
    mask.scatter_(1, target, True)
    return mask[:, :student_length]


def _target_columns(student_positions: torch.Tensor, student_length: int) -> torch.Tensor:
    """Student columns to write to; padded words go to one spare column past the end, dropped after."""
    return torch.where(
        student_positions >= 0, student_positions, torch.full_like(student_positions, student_length)
    )
