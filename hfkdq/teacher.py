"""The teacher of a run: the given model when it already predicts the task's labels, else fine-tuned here.

A teacher whose head predicts another label set is refused (unless `teacher_finetune=always`): silently
re-training it would distil something other than what the user named.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import torch
from transformers import AutoConfig, PreTrainedModel, Trainer

from hfkdq.arguments import TeacherArguments
from hfkdq.checkpoints import latest_complete_checkpoint
from hfkdq.config import DistillationArguments
from hfkdq.heads import auto_class_for, head_of_architectures
from hfkdq.outputs import save_model_atomically
from hfkdq.resources import resolve_model_name_or_path
from hfkdq.tasks import TaskData
from hfkdq.teacher_checks import PatientEarlyStopping, chance_level

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TeacherSource:
    """The teacher as the user named it, where it loads from, and its config: resolved and read once
    per run, then handed to every stage that needs them (sequence-length check, tokenizer, student
    layers, fine-tuning)."""

    name: str
    """As given (`--teacher_name_or_path`): a Hub id or a path; what results.json records as base model."""
    path: str
    """Where it loads from: the packaged copy of a known Hub id, or the path itself."""
    config: Any

    @classmethod
    def resolve(cls, name_or_path: str) -> TeacherSource:
        """Resolve, check the directory file by file (a missing or truncated file is named), read the config."""
        from hfkdq.model_checks import check_model_source

        path = resolve_model_name_or_path(name_or_path)
        check_model_source(path, "teacher")
        return cls(name_or_path, path, AutoConfig.from_pretrained(path))

    def tokenizer(self):
        """The teacher's tokenizer (also the student's, unless a pretrained student brings its own)."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.path)


class PreparedTeacher(NamedTuple):
    model: PreTrainedModel
    source: str
    """Where the teacher was loaded from, or where the one fine-tuned here was saved."""
    learning_curve: list[dict[str, float]]
    """Per-epoch validation metrics of the fine-tuning run (empty for a loaded teacher)."""


def prepare_teacher(
    model_args: TeacherArguments,
    training_args: DistillationArguments,
    task: TaskData,
    tokenizer,
    teacher: TeacherSource | None = None,
) -> PreparedTeacher:
    """Load a teacher fine-tuned for the task's labels, or fine-tune the given encoder first.

    Fine-tuning evaluates on the validation split every epoch, keeps the best epoch and stops early
    when the metric stops improving: a fixed epoch count under-trains on small data, and a student
    cannot learn more from its teacher than the teacher knows. `teacher` is the run's resolved
    `--teacher_name_or_path` (resolved here when not given).
    """
    if teacher is None:
        path = resolve_model_name_or_path(model_args.teacher_name_or_path)
        teacher = TeacherSource(model_args.teacher_name_or_path, path, AutoConfig.from_pretrained(path))
    source, config = teacher.path, teacher.config
    head_class = auto_class_for(task.head)
    state = teacher_head_state(config, task)
    if state == "mismatch" and model_args.teacher_finetune != "always":
        raise ValueError(
            f"teacher {model_args.teacher_name_or_path} predicts labels {_label_list(config)} but the dataset "
            f"has {task.label_names}: pass a teacher fine-tuned on this label set, or --teacher_finetune always "
            "to re-train its head"
        )
    if state == "match" and model_args.teacher_finetune != "always":
        logger.info("Teacher %s is already fine-tuned for these labels; loading it.", source)
        return PreparedTeacher(head_class.from_pretrained(source), source, [])
    if model_args.teacher_finetune == "never":
        raise ValueError(
            f"teacher {model_args.teacher_name_or_path} has no {task.head}-classification head for labels "
            f"{task.label_names}, and teacher_finetune=never: pass a fine-tuned teacher or allow fine-tuning"
        )

    logger.info("Fine-tuning teacher %s on the task first.", source)
    extra = {"problem_type": task.problem_type} if task.problem_type else {}
    # A checkpoint with another head (or another label count) gets a fresh head: that is what is trained here.
    # float32 whatever the checkpoint's storage dtype: transformers 5 would otherwise load an fp16
    # checkpoint as fp16 and fine-tune it without float32 master weights.
    teacher = head_class.from_pretrained(
        source,
        num_labels=task.num_labels,
        ignore_mismatched_sizes=True,
        dtype=torch.float32,
        **task.label_maps(),
        **extra,
    )
    teacher_dir = Path(training_args.output_dir) / "teacher"
    validation = task.features.get(task.eval_splits[0]) if task.eval_splits else None
    select_best = model_args.teacher_select_best and validation is not None
    if model_args.teacher_select_best and validation is None:
        logger.warning("No validation split: the teacher trains for a fixed number of epochs, unselected.")
    selection = (
        dict(
            eval_strategy="epoch",
            save_strategy="epoch",
            save_total_limit=1,
            load_best_model_at_end=True,
            metric_for_best_model=task.main_metric,
            greater_is_better=True,
        )
        if select_best
        else dict(eval_strategy="no", save_strategy="no", load_best_model_at_end=False)
    )
    teacher_args = teacher_training_arguments(
        model_args, training_args, output_dir=str(teacher_dir) + "-training", **selection
    )
    teacher_trainer = Trainer(
        model=teacher,
        args=teacher_args,
        train_dataset=task.train_dataset,
        eval_dataset=validation if select_best else None,
        processing_class=tokenizer,
        data_collator=task.data_collator,
        compute_metrics=task.compute_metrics if select_best else None,
        # Patience starts once the teacher beats chance: an NER teacher tags all O for its first epochs.
        callbacks=[
            PatientEarlyStopping(
                model_args.teacher_early_stopping_patience, chance_level(task, task.eval_splits[0]).value
            )
        ]
        if select_best
        else None,
    )
    resume = None
    if training_args.resume_from_checkpoint:
        # A run killed while fine-tuning its teacher continues the teacher too, not from zero.
        resume = latest_complete_checkpoint(teacher_args.output_dir)
        if resume is not None:
            logger.info("Resuming the teacher's fine-tuning from %s.", resume)
    teacher_trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    save_model_atomically(teacher_trainer, teacher_dir)
    if teacher_trainer.is_world_process_zero():
        shutil.rmtree(teacher_args.output_dir, ignore_errors=True)
    return PreparedTeacher(
        teacher_trainer.model, str(teacher_dir), learning_curve(teacher_trainer.state.log_history)
    )


def teacher_training_arguments(
    model_args: TeacherArguments, training_args: DistillationArguments, **replaced
) -> DistillationArguments:
    """The run's `TrainingArguments` with the teacher's own budget, and a log line for each setting the
    teacher does not share with the student, so none is replaced or ignored silently.

    ``--max_steps`` is the student's: a quick ``--max_steps 1`` run must not distil from a one-step
    teacher. The teacher gets ``--teacher_max_steps`` (none: its epochs) instead.
    """
    teacher_epochs = model_args.teacher_num_train_epochs
    teacher_rate = model_args.teacher_learning_rate
    teacher_steps = model_args.teacher_max_steps
    replaced = {
        "num_train_epochs": training_args.num_train_epochs if teacher_epochs is None else teacher_epochs,
        "learning_rate": training_args.learning_rate if teacher_rate is None else teacher_rate,
        "max_steps": -1 if teacher_steps is None else teacher_steps,
        "resume_from_checkpoint": None,  # the teacher resumes from its own checkpoints
        "push_to_hub": False,  # the student is what a run publishes
        **replaced,
    }
    if training_args.max_steps > 0 and teacher_steps is None:
        logger.warning(
            "--max_steps %d caps the student only; the teacher fine-tunes for %s epochs (--teacher_max_steps "
            "caps it).",
            training_args.max_steps,
            replaced["num_train_epochs"],
        )
    changed = {
        name: (getattr(training_args, name), value)
        for name, value in replaced.items()
        if getattr(training_args, name) != value
    }
    logger.info(
        "Teacher fine-tuning settings that differ from the student's: %s.",
        ", ".join(f"{name}={_shown(new)} (student: {_shown(old)})" for name, (old, new) in changed.items()),
    )
    return dataclasses.replace(training_args, **replaced)


def _shown(value) -> str:
    """A setting as a user types it: an enum by its value (``epoch``, not ``IntervalStrategy.EPOCH``)."""
    return str(getattr(value, "value", value))


def learning_curve(log_history: list[dict]) -> list[dict[str, float]]:
    """The evaluation entries of a Trainer's log history: epoch, step and every eval_ metric."""
    return [
        {key: value for key, value in entry.items() if key in ("epoch", "step") or key.startswith("eval_")}
        for entry in log_history
        if any(key.startswith("eval_") for key in entry)
    ]


def teacher_head_state(config, task: TaskData) -> str:
    """'match' (fine-tuned for these labels), 'mismatch' (another label set) or 'none' (no head)."""
    if head_of_architectures(config.architectures or []) != task.head:
        return "none"
    if task.label_names is None:
        return "match" if config.num_labels == 1 else "mismatch"
    return "match" if _label_list(config) == list(task.label_names) else "mismatch"


def _label_list(config) -> list[str]:
    return [config.id2label[i] for i in range(config.num_labels)]
