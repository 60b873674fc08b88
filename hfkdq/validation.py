"""Checks of sizes, counts and splits that must hold before any training starts.

Each failure names the flag (or file and split) and the fix; none of them may surface later as an
`IndexError`, a `range()` of a negative number, or a crash in evaluation after hours of training.
"""

from __future__ import annotations

import logging
import math
from typing import Any

logger = logging.getLogger(__name__)

ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert", "mpnet", "longformer", "bart")
"""Model types whose position ids start after the padding index, so two positions are not usable."""


def check_count(name: str, value: Any, minimum: int = 1, allow_none: bool = True) -> None:
    """An integer flag such as a batch size or a sample count: a whole number >= `minimum` (or None)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"--{name} must be a whole number >= {minimum}, got {value!r}")


def check_data_sizes(max_seq_length: Any, max_train_samples: Any, max_eval_samples: Any) -> None:
    """Sizes of the data arguments, checked when they are parsed."""
    check_count("max_seq_length", max_seq_length, minimum=2, allow_none=False)
    check_count("max_train_samples", max_train_samples)
    check_count("max_eval_samples", max_eval_samples)


def usable_positions(config: Any) -> int | None:
    """How many tokens the model can read: its position embeddings, less RoBERTa-style offsets."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return None
    return positions - 2 if getattr(config, "model_type", "") in ROBERTA_LIKE else positions


def check_sequence_length(max_seq_length: int, config: Any, model_name: str) -> None:
    """A sequence length the model cannot embed would crash only in evaluation, after training."""
    limit = usable_positions(config)
    if limit is not None and max_seq_length > limit:
        raise ValueError(
            f"--max_seq_length {max_seq_length} is longer than {model_name} can read ({limit} positions): "
            f"use --max_seq_length {limit} or less"
        )


def check_splits_not_empty(features: Any, sources: dict[str, str] | None = None) -> None:
    """Every loaded split has examples: a header-only file or a filter that kept nothing fails here."""
    for split, data in features.items():
        if len(data) == 0:
            where = f" ({sources[split]})" if sources and split in sources else ""
            raise ValueError(
                f"the {split} split{where} has no examples: the file is empty or holds only a header, or a "
                "--max_*_samples / filter left nothing"
            )


def check_training_sizes(args: Any) -> None:
    """Batch sizes, accumulation and schedule lengths of `TrainingArguments`."""
    check_count("per_device_train_batch_size", args.per_device_train_batch_size, allow_none=False)
    check_count("per_device_eval_batch_size", args.per_device_eval_batch_size, allow_none=False)
    check_count("gradient_accumulation_steps", args.gradient_accumulation_steps, allow_none=False)
    if args.max_steps is not None and args.max_steps <= 0:
        if not (isinstance(args.num_train_epochs, (int, float)) and math.isfinite(args.num_train_epochs)):
            raise ValueError(f"--num_train_epochs must be a finite number > 0, got {args.num_train_epochs!r}")
        if args.num_train_epochs <= 0:
            raise ValueError(
                f"--num_train_epochs must be > 0 (or set --max_steps > 0), got {args.num_train_epochs!r}"
            )
    if (
        not (isinstance(args.learning_rate, (int, float)) and math.isfinite(args.learning_rate))
        or args.learning_rate < 0
    ):
        raise ValueError(f"--learning_rate must be a finite number >= 0, got {args.learning_rate!r}")


def check_max_metric_drop(value: float | None) -> float | None:
    """A quality-gate threshold in metric points: finite and >= 0 (NaN would let every variant through)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"--max_metric_drop must be a finite number of metric points >= 0, got {value!r}")
    return float(value)


TEACHER_FINETUNE_CHOICES = ("auto", "always", "never")


def check_teacher_settings(args: Any) -> None:
    """The teacher's own budget means what it says: 0 epochs or a learning rate of 0 would otherwise
    fall back to the student's settings (a falsy value read as "not set"), and train the teacher anyway."""
    if args.teacher_finetune not in TEACHER_FINETUNE_CHOICES:
        raise ValueError(
            f"--teacher_finetune must be one of {', '.join(TEACHER_FINETUNE_CHOICES)}, got {args.teacher_finetune!r}"
        )
    epochs = args.teacher_num_train_epochs
    if epochs is not None and not (_finite_number(epochs) and epochs > 0):
        raise ValueError(
            f"--teacher_num_train_epochs must be a finite number > 0, got {epochs!r}; to use the teacher as "
            "given, without fine-tuning, pass --teacher_finetune never"
        )
    check_count("teacher_max_steps", args.teacher_max_steps)
    rate = args.teacher_learning_rate
    if rate is not None and not (_finite_number(rate) and rate > 0):
        raise ValueError(f"--teacher_learning_rate must be a finite number > 0, got {rate!r}")
    check_count("teacher_early_stopping_patience", args.teacher_early_stopping_patience, allow_none=False)
    if not (_finite_number(args.teacher_min_metric) and 0 <= args.teacher_min_metric <= 1):
        raise ValueError(
            f"--teacher_min_metric must be a number from 0 to 1 (a metric such as F1 or accuracy), got "
            f"{args.teacher_min_metric!r}"
        )


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_entity_types(raw: Any, label_names: list[str], sources: dict[str, str] | None = None) -> None:
    """NER data a model can learn from: the training split has entities (else the teacher and student
    learn to tag everything O, and the run fails only after the teacher has trained), and entity types
    only the evaluation splits have are named (they are scored, but nothing trains on them)."""
    types = {split: _entity_types(raw[split]["ner_tags"], label_names) for split in raw}
    if "train" in types and not types["train"]:
        where = f" ({sources['train']})" if sources and "train" in sources else ""
        raise ValueError(
            f"the train split{where} has no entities: every tag is O, so there is nothing to learn; check that "
            "the tag is the last column of each line, or raise --max_train_samples"
        )
    for split, found in types.items():
        unseen = sorted(found - types.get("train", found))
        if unseen:
            logger.warning(
                "The %s split has entity types the training set lacks (%s): they are scored, but no model "
                "learns them. Add training examples of them, or evaluate on data without them.",
                split,
                ", ".join(unseen),
            )


def _entity_types(tag_rows: Any, label_names: list[str]) -> set[str]:
    ids = {tag for row in tag_rows for tag in row}
    return {label_names[tag].split("-", 1)[-1] for tag in ids if label_names[tag] != "O"}


def check_share(name: str, value: Any) -> None:
    """A probability or share: a finite number from 0 to 1."""
    if not (_finite_number(value) and 0 <= value <= 1):
        raise ValueError(f"--{name} must be a number from 0 to 1, got {value!r}")


def check_positive_number(name: str, value: Any) -> None:
    """A ratio or scale: a finite number > 0."""
    if not (_finite_number(value) and value > 0):
        raise ValueError(f"--{name} must be a finite number > 0, got {value!r}")
