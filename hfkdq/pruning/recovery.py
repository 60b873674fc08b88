"""Recover a pruned student by distilling it again from the teacher it was distilled from.

Pruning removes what the student learned in the cut neurons; a short distillation from the same teacher
gives most of it back (the teacher's soft targets carry more than the gold labels). When the distillation
ran from a teacher-output cache (`hfkdq.teacher_cache`), recovery reads the same cache: the teacher and
the training examples are unchanged, so its stored logits are still the right targets and recovery runs
no teacher forward pass.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel

from hfkdq.config import DistillationArguments
from hfkdq.teacher_cache import TeacherOutputCache
from hfkdq.trainer import DistillationTrainer

RECOVERY_TRAINING_DIR = "prune-recovery-training"


def recover(
    student: PreTrainedModel,
    teacher: PreTrainedModel,
    training_args: DistillationArguments,
    train_dataset: Any,
    data_collator: Callable,
    *,
    processing_class: Any = None,
    teacher_processing_class: Any = None,
    teacher_cache: TeacherOutputCache | None = None,
    num_train_epochs: float | None = None,
) -> DistillationTrainer:
    """Distil the pruned `student` from `teacher` with the run's own settings; return the trainer.

    `num_train_epochs` overrides the distillation's epochs (default: the same as the distillation).
    Checkpoints go to a scratch directory under the run's output directory, removed afterwards.
    """
    overrides: dict[str, Any] = {
        "output_dir": str(Path(training_args.output_dir) / RECOVERY_TRAINING_DIR),
        "resume_from_checkpoint": None,
        "push_to_hub": False,
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "eval_strategy": "no",
    }
    if num_train_epochs is not None:
        overrides |= {"num_train_epochs": num_train_epochs, "max_steps": -1}
    arguments = dataclasses.replace(training_args, **overrides)
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=arguments,
        train_dataset=train_dataset,
        processing_class=processing_class,
        teacher_processing_class=teacher_processing_class,
        data_collator=data_collator,
        teacher_cache=teacher_cache,
    )
    trainer.train()
    if trainer.is_world_process_zero():
        shutil.rmtree(arguments.output_dir, ignore_errors=True)
    return trainer
