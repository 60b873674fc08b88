"""The teacher of a run: the given model when it already predicts the task's labels, else fine-tuned here.

A teacher whose head predicts another label set is refused (unless `teacher_finetune=always`): silently
re-training it would distil something other than what the user named.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import AutoConfig, PreTrainedModel, Trainer

from hfkdq.config import DistillationArguments
from hfkdq.heads import auto_class_for, head_of_architectures
from hfkdq.outputs import save_model_atomically
from hfkdq.resources import resolve_model_name_or_path
from hfkdq.tasks import TaskData

if TYPE_CHECKING:  # pragma: no cover
    from hfkdq.pipeline import ModelArguments

logger = logging.getLogger(__name__)


def prepare_teacher(
    model_args: ModelArguments, training_args: DistillationArguments, task: TaskData, tokenizer
) -> tuple[PreTrainedModel, str]:
    """Load a teacher fine-tuned for the task's labels, or fine-tune the given encoder first."""
    source = resolve_model_name_or_path(model_args.teacher_name_or_path)
    head_class = auto_class_for(task.head)
    config = AutoConfig.from_pretrained(source)
    state = teacher_head_state(config, task)
    if model_args.teacher_finetune not in ("auto", "always", "never"):
        raise ValueError(
            f"teacher_finetune must be auto, always or never, got {model_args.teacher_finetune!r}"
        )
    if state == "mismatch" and model_args.teacher_finetune != "always":
        raise ValueError(
            f"teacher {model_args.teacher_name_or_path} predicts labels {_label_list(config)} but the dataset "
            f"has {task.label_names}: pass a teacher fine-tuned on this label set, or --teacher_finetune always "
            "to re-train its head"
        )
    if state == "match" and model_args.teacher_finetune != "always":
        logger.info("Teacher %s is already fine-tuned for these labels; loading it.", source)
        return head_class.from_pretrained(source), source
    if model_args.teacher_finetune == "never":
        raise ValueError(
            f"teacher {model_args.teacher_name_or_path} has no {task.head}-classification head for labels "
            f"{task.label_names}, and teacher_finetune=never: pass a fine-tuned teacher or allow fine-tuning"
        )

    logger.info("Fine-tuning teacher %s on the task first.", source)
    extra = {"problem_type": task.problem_type} if task.problem_type else {}
    teacher = head_class.from_pretrained(source, num_labels=task.num_labels, **task.label_maps(), **extra)
    teacher_dir = Path(training_args.output_dir) / "teacher"
    teacher_args = dataclasses.replace(
        training_args,
        output_dir=str(teacher_dir) + "-training",
        num_train_epochs=model_args.teacher_num_train_epochs or training_args.num_train_epochs,
        learning_rate=model_args.teacher_learning_rate or training_args.learning_rate,
        save_strategy="no",
        eval_strategy="no",
        load_best_model_at_end=False,
        resume_from_checkpoint=None,
        push_to_hub=False,  # the student is what a run publishes
    )
    teacher_trainer = Trainer(
        model=teacher,
        args=teacher_args,
        train_dataset=task.train_dataset,
        processing_class=tokenizer,
        data_collator=task.data_collator,
    )
    teacher_trainer.train()
    save_model_atomically(teacher_trainer, teacher_dir)
    if teacher_trainer.is_world_process_zero():
        shutil.rmtree(teacher_args.output_dir, ignore_errors=True)
    return teacher_trainer.model, str(teacher_dir)


def teacher_head_state(config, task: TaskData) -> str:
    """'match' (fine-tuned for these labels), 'mismatch' (another label set) or 'none' (no head)."""
    if head_of_architectures(config.architectures or []) != task.head:
        return "none"
    if task.label_names is None:
        return "match" if config.num_labels == 1 else "mismatch"
    return "match" if _label_list(config) == list(task.label_names) else "mismatch"


def _label_list(config) -> list[str]:
    return [config.id2label[i] for i in range(config.num_labels)]
