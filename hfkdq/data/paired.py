"""Training data for a student whose tokenizer is not the teacher's: each model reads its own tokens.

`pair_features` tokenizes the same raw examples twice, once per model, and keeps the student's
features as they are (its own ``input_ids``, ``attention_mask``, ``labels``) beside the teacher's
inputs under a ``teacher_`` prefix. For token tasks it adds, per example, the first-sub-token
position of every word both sides kept (`hfkdq.data.word_alignment.align_words`), which is how the
teacher's per-token outputs reach the student's tokens. `PairedCollator` pads the teacher's columns
with the teacher's pad id; `teacher_view` gives the teacher's inputs back under their plain names
(the teacher cache keys and builds from it, so one cache serves every student of that teacher).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from datasets import Dataset

from hfkdq.data.word_alignment import NO_POSITION, align_words

TEACHER_PREFIX = "teacher_"
TEACHER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TEACHER_INPUT_COLUMNS = tuple(TEACHER_PREFIX + name for name in TEACHER_INPUTS)
TEACHER_WORD_POSITIONS = "teacher_word_positions"
STUDENT_WORD_POSITIONS = "student_word_positions"
WORD_POSITION_COLUMNS = (TEACHER_WORD_POSITIONS, STUDENT_WORD_POSITIONS)
PAIRED_COLUMNS = (*TEACHER_INPUT_COLUMNS, *WORD_POSITION_COLUMNS)
"""Every column a paired dataset adds to the student's features."""


def is_paired(dataset: Any) -> bool:
    """Whether a training set carries the teacher's own tokenization beside the student's."""
    return TEACHER_PREFIX + "input_ids" in (getattr(dataset, "column_names", None) or ())


def pair_features(
    raw: Dataset,
    teacher_featurize: Callable[[dict[str, list]], Any],
    student_featurize: Callable[[dict[str, list]], Any],
    token_level: bool,
    batch_size: int = 1000,
) -> Dataset:
    """The student's features of ``raw`` plus the teacher's inputs (and word positions for token tasks).

    ``*_featurize`` are the tasks' batched featurizers (`hfkdq.tasks.TaskData.featurize`), each
    bound to its model's tokenizer; for token tasks they must return fast-tokenizer encodings, whose
    ``word_ids`` give the alignment.
    """
    if len(raw) == 0:
        raise ValueError("cannot pair an empty dataset")
    rows: dict[str, list] = {}
    for start in range(0, len(raw), batch_size):
        batch = raw[start : start + batch_size]
        teacher = teacher_featurize(batch)
        student = student_featurize(batch)
        for name, values in student.items():
            rows.setdefault(name, []).extend(values)
        for name in TEACHER_INPUTS:
            if name in teacher:
                rows.setdefault(TEACHER_PREFIX + name, []).extend(teacher[name])
        if token_level:
            for index in range(len(student["input_ids"])):
                teacher_positions, student_positions = align_words(
                    _word_ids(teacher, index), _word_ids(student, index)
                )
                rows.setdefault(TEACHER_WORD_POSITIONS, []).append(teacher_positions)
                rows.setdefault(STUDENT_WORD_POSITIONS, []).append(student_positions)
    return Dataset.from_dict(rows)


def _word_ids(encoding: Any, index: int) -> list[int | None]:
    if not callable(getattr(encoding, "word_ids", None)) or not getattr(encoding, "encodings", None):
        raise ValueError(
            "word alignment needs word_ids(), which only fast (Rust) tokenizers provide: load both "
            "tokenizers with AutoTokenizer.from_pretrained(..., use_fast=True)"
        )
    return encoding.word_ids(index)


def teacher_view(dataset: Dataset) -> Dataset:
    """The teacher's inputs under their plain names: the dataset itself when it is not paired."""
    if not is_paired(dataset):
        return dataset
    columns = [column for column in TEACHER_INPUT_COLUMNS if column in dataset.column_names]
    return dataset.select_columns(columns).rename_columns(
        {column: column.removeprefix(TEACHER_PREFIX) for column in columns}
    )


def pad_rows(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """Right-pad integer rows to the longest (at least one column) with ``value``."""
    length = max(1, max((len(row) for row in rows), default=0))
    padded = torch.full((len(rows), length), value, dtype=torch.long)
    for index, row in enumerate(rows):
        padded[index, : len(row)] = torch.tensor(row, dtype=torch.long)
    return padded


class PairedCollator:
    """The student's collator for its own features; the teacher's inputs and word positions padded beside.

    The teacher's ids are padded with its own pad id (MPNet and RoBERTa derive position ids from
    it). Batches without teacher columns (evaluation) pass through unchanged.
    """

    def __init__(self, base_collator: Callable, teacher_pad_token_id: int):
        self.base_collator = base_collator
        self.teacher_pad_token_id = teacher_pad_token_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if not features or not any(column in features[0] for column in PAIRED_COLUMNS):
            return self.base_collator(features)
        paired = {
            column: [feature[column] for feature in features]
            for column in PAIRED_COLUMNS
            if column in features[0]
        }
        batch = self.base_collator(
            [{k: v for k, v in feature.items() if k not in PAIRED_COLUMNS} for feature in features]
        )
        pad_values = {
            TEACHER_PREFIX + "input_ids": self.teacher_pad_token_id,
            TEACHER_PREFIX + "attention_mask": 0,
            TEACHER_PREFIX + "token_type_ids": 0,
        }
        for column, rows in paired.items():
            batch[column] = pad_rows(rows, pad_values.get(column, NO_POSITION))
        return batch
