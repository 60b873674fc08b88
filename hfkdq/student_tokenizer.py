"""What the student reads: the teacher's tokens when its tokenizer is the teacher's, else its own.

A pretrained student (MiniLM under an MPNet teacher, a cased model under an uncased one) keeps the
tokenizer it was pretrained with: its embeddings mean nothing for another tokenizer's ids. It then
gets its own `TaskData` (the same text tokenized its way, its own collator, evaluation features and
saved tokenizer) and trains on a paired set (`hfkdq.data.paired`) that carries the teacher's tokens
beside its own. A student whose tokenizer splits text exactly as the teacher's takes the shared path
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasets import Dataset
from transformers import AutoTokenizer

from hfkdq.compatibility import same_tokenization
from hfkdq.data.paired import pair_features
from hfkdq.tasks import TaskData


@dataclass(frozen=True)
class StudentData:
    """The student's task data and tokenizer; ``own_tokenizer`` is False when both are the teacher's."""

    task: TaskData
    tokenizer: Any
    own_tokenizer: bool = False


def load_student_tokenizer(source: str, teacher_tokenizer) -> Any | None:
    """The student's own tokenizer, or None when it tokenizes exactly as the teacher's does.

    A student must bring its tokenizer: its embedding rows are indexed by that tokenizer's ids.
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ValueError(
            f"student {source} has no loadable tokenizer ({str(error).splitlines()[0][:160]}): a student reads "
            "its own tokens; save the tokenizer it was trained with beside it (tokenizer.save_pretrained(dir))"
        ) from None
    if tokenizer is None or isinstance(tokenizer, bool):
        raise ValueError(
            f"student {source} has no tokenizer: save the tokenizer it was trained with beside it "
            "(tokenizer.save_pretrained(dir))"
        )
    return None if same_tokenization(tokenizer, teacher_tokenizer) else tokenizer


def check_student_vocabulary(student_config, tokenizer, source: str) -> None:
    """A tokenizer whose ids run past the student's embedding table would index out of range mid-training."""
    if tokenizer is not None and len(tokenizer) > student_config.vocab_size:
        raise ValueError(
            f"student {source}: its tokenizer has {len(tokenizer)} tokens but its embeddings only "
            f"{student_config.vocab_size}: the tokenizer beside it is not the one it was trained with"
        )


def paired_training_set(
    teacher_task: TaskData, student_task: TaskData, raw: Dataset | None = None
) -> Dataset:
    """The student's features of the training text (or of ``raw``) with the teacher's tokens beside them."""
    raw = teacher_task.raw_train if raw is None else raw
    if raw is None or teacher_task.featurize is None or student_task.featurize is None:
        raise ValueError(
            "a student with its own tokenizer needs the raw training text and both tasks' featurizers"
        )
    return pair_features(raw, teacher_task.featurize, student_task.featurize, teacher_task.head == "token")
