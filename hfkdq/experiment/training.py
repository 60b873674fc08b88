"""The training stages of a run: the teacher prepared and scored, the student distilled (and pruned and
recovered when asked), the plain baseline trained beside it, every model scored the same way."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, set_seed

from hfkdq.arguments import ModelArguments
from hfkdq.config import DistillationArguments
from hfkdq.experiment.run_setup import CACHE_FIX, RunSetup, student_depth
from hfkdq.experiment.scoring import evaluate_on_splits, plain_evaluator, warn_if_weak_teacher
from hfkdq.layout import PLAIN_STUDENT_DIR, STUDENT_DIR, UNPRUNED_STUDENT_DIR
from hfkdq.loss_terms import WEIGHT_FIELDS
from hfkdq.outputs import save_model_atomically
from hfkdq.resources import resolve_model_name_or_path
from hfkdq.student_tokenizer import StudentData
from hfkdq.students import load_student, make_student
from hfkdq.tasks import TaskData
from hfkdq.teacher import prepare_teacher
from hfkdq.teacher_checks import check_teacher_above_chance, warn_if_still_improving
from hfkdq.trainer import DistillationTrainer
from hfkdq.transfer import mix_transfer

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TeacherStage:
    """The prepared teacher, scored on every split before the student trains."""

    model: PreTrainedModel
    source: str
    learning_curve: list[dict[str, float]]
    evaluation: dict[str, tuple[dict[str, float], str | None]]
    chance: dict[str, Any] | None
    still_improving: bool


def teacher_stage(run: RunSetup, task: TaskData, tokenizer) -> TeacherStage:
    """Load or fine-tune the teacher, then score it: a weak teacher is worth a warning before the long part."""
    model, source, curve = prepare_teacher(run.model_args, run.training_args, task, tokenizer, run.teacher)
    evaluation = evaluate_on_splits(plain_evaluator(model, run.training_args, task, tokenizer), task)
    warn_if_weak_teacher(evaluation, task, run.model_args.teacher_min_metric)
    chance = check_teacher_above_chance(evaluation, task)
    still_improving = warn_if_still_improving(curve, task.main_metric)
    return TeacherStage(model, source, curve, evaluation, chance, still_improving)


@dataclasses.dataclass
class DistilStage:
    trainer: DistillationTrainer
    train_result: Any
    train_dataset: Any
    cache: Any
    saved: Any
    """The saved student as `hfkdq.quantization.artifacts.SavedModel`: its path, config and head."""
    unpruned: PreTrainedModel | None = None
    """The distilled student before `--prune_ffn_keep` pruned and recovered it; None without pruning."""
    pruning: dict[str, Any] | None = None


def distil_stage(
    run: RunSetup, task: TaskData, tokenizer, teacher: TeacherStage, student_model: PreTrainedModel
) -> DistilStage:
    """Mix in the transfer data, distil the student from the teacher, save it."""
    from hfkdq.quantization.artifacts import SavedModel

    model_args, training_args, student = run.model_args, run.training_args, run.student
    train_dataset = run.train_dataset
    if run.transfer is not None:
        train_dataset = mix_transfer(
            run.labelled_dataset, run.transfer, model_args.transfer_ratio, training_args.seed
        )
    cache = None
    if model_args.teacher_cache:
        cache = _teacher_cache(model_args, training_args, teacher.model, teacher.source, train_dataset, task)
    trainer = DistillationTrainer(
        model=student_model,
        teacher_model=teacher.model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=student.task.features[student.task.eval_splits[0]] if student.task.eval_splits else None,
        processing_class=student.tokenizer,
        teacher_processing_class=tokenizer if student.own_tokenizer else None,
        data_collator=student.task.data_collator,
        compute_metrics=student.task.compute_metrics,
        teacher_cache=cache,
    )
    train_result = trainer.train(resume_from_checkpoint=run.resume_checkpoint)
    unpruned = pruning = None
    if model_args.prune_ffn_keep is not None:
        save_model_atomically(trainer, run.output_dir / UNPRUNED_STUDENT_DIR)
        unpruned = trainer.student
        trainer, pruning = prune_and_recover(
            model_args,
            training_args,
            trainer,
            teacher.model,
            train_dataset,
            run.labelled_dataset,
            student.task,
            cache,
            teacher_processing_class=tokenizer if student.own_tokenizer else None,
        )
    student_dir = run.output_dir / STUDENT_DIR
    save_model_atomically(trainer, student_dir)
    # Described from memory: nothing downstream reads the saved config back to learn what it just wrote.
    saved = SavedModel(path=student_dir, config=trainer.student.config, head=task.head)
    return DistilStage(trainer, train_result, train_dataset, cache, saved, unpruned, pruning)


def build_student(model_args: ModelArguments, teacher: PreTrainedModel) -> PreTrainedModel:
    """The student: a copy of teacher layers, or a pretrained encoder (some of its layers), re-headed."""
    if model_args.student_name_or_path:
        return load_student(
            resolve_model_name_or_path(model_args.student_name_or_path),
            teacher,
            model_args.student_num_layers,
            model_args.student_layers,
        )
    return make_student(teacher, student_depth(model_args), model_args.student_layers)


def train_plain_baseline(
    model_args: ModelArguments,
    training_args: DistillationArguments,
    teacher,
    student: StudentData,
    train_dataset,
) -> DistillationTrainer:
    """The same student trained on the gold labels alone (no teacher pass): the baseline distillation must beat.

    ``train_dataset`` is the labelled set the distilled student trained on (a paired set for a
    student with its own tokenizer; the teacher's columns are not read).
    """
    set_seed(training_args.seed)
    student_model = build_student(model_args, teacher)
    plain_weights = {field_name: 0.0 for field_name in WEIGHT_FIELDS} | {"ce_weight": 1.0}
    arguments = dataclasses.replace(
        training_args,
        output_dir=str(Path(training_args.output_dir) / "plain-student-training"),
        resume_from_checkpoint=None,
        push_to_hub=False,
        **plain_weights,
    )
    trainer = DistillationTrainer(
        model=student_model,
        teacher_model=teacher,
        args=arguments,
        train_dataset=train_dataset,
        processing_class=student.tokenizer,
        data_collator=student.task.data_collator,
    )
    trainer.train()
    if trainer.is_world_process_zero():
        shutil.rmtree(arguments.output_dir, ignore_errors=True)
    return trainer


def prune_and_recover(
    model_args: ModelArguments,
    training_args: DistillationArguments,
    trainer: DistillationTrainer,
    teacher: PreTrainedModel,
    train_dataset: Any,
    labelled_dataset: Any,
    task: TaskData,
    cache: Any,
    teacher_processing_class: Any = None,
) -> tuple[DistillationTrainer, dict[str, Any]]:
    """Prune the distilled student's FFNs (scored on the gold examples, in the student's tokens), then
    distil it again from the same teacher on the distillation's own training set, through its cache if any."""
    from hfkdq.pruning import prune_model
    from hfkdq.pruning.recovery import recover

    student = trainer.student
    pruning = prune_model(
        student,
        model_args.prune_ffn_keep,
        labelled_dataset,
        task.data_collator,
        importance=model_args.prune_importance,
        max_samples=model_args.prune_importance_samples,
        seed=training_args.seed,
    )
    pruning.pop("kept_neurons")
    logger.info(
        "Pruned every FFN from %d to %d neurons; recovering.", pruning["original_width"], pruning["width"]
    )
    recovered = recover(
        student,
        teacher,
        training_args,
        train_dataset,
        task.data_collator,
        processing_class=trainer.processing_class,
        teacher_processing_class=teacher_processing_class,
        teacher_cache=cache,
        num_train_epochs=model_args.prune_recovery_epochs,
    )
    pruning["recovery"] = {
        "num_train_epochs": model_args.prune_recovery_epochs or training_args.num_train_epochs,
        "from_teacher_cache": cache is not None,
    }
    return recovered, pruning


def _teacher_cache(model_args, training_args, teacher, teacher_source, train_dataset, task):
    """Build the cache when the directory has none, on the main process; every process then loads it."""
    from hfkdq.teacher_cache import (
        CACHE_METADATA,
        StaleTeacherCacheError,
        TeacherOutputCache,
        build_teacher_cache,
    )

    directory = Path(
        Path(training_args.output_dir) / "teacher-cache"
        if model_args.teacher_cache == "auto"
        else model_args.teacher_cache
    )
    with training_args.main_process_first(desc="teacher-output cache"):
        # An empty directory is free, and 'auto' is the run's own: what is there is rebuilt.
        overwrite = model_args.teacher_cache == "auto" or (
            directory.is_dir() and not any(directory.iterdir())
        )
        build = not (directory / CACHE_METADATA).is_file()
        if not build:
            try:
                TeacherOutputCache.load(directory).check(teacher, train_dataset)
            except StaleTeacherCacheError as error:
                if model_args.teacher_cache != "auto":
                    # A directory the user named is not silently replaced.
                    raise StaleTeacherCacheError(
                        f"--teacher_cache {directory}: {error} {CACHE_FIX}"
                    ) from None
                logger.info("Rebuilding the stale teacher cache in %s for this teacher and data.", directory)
                build = overwrite = True
        if build:
            build_teacher_cache(
                teacher,
                train_dataset,
                task.data_collator,
                directory,
                teacher_name_or_path=teacher_source,
                overwrite=overwrite,
            )
    return TeacherOutputCache.load(directory)


def evaluate_stage(
    run: RunSetup, teacher: TeacherStage, distilled: DistilStage
) -> dict[str, dict[str, tuple[dict[str, float], str | None]]]:
    """Role -> split -> (metrics, per-type report), the plain baseline trained here when asked.

    Every model goes through the same plain evaluation loop: comparable losses (the student's is its
    own task loss, not the distillation loss) and no teacher forward pass per student batch.
    """
    student, training_args = run.student, run.training_args

    def evaluate(model: PreTrainedModel) -> dict[str, tuple[dict[str, float], str | None]]:
        return evaluate_on_splits(
            plain_evaluator(model, training_args, student.task, student.tokenizer), student.task
        )

    evaluations = {"teacher": teacher.evaluation, "student": evaluate(distilled.trainer.student)}
    if distilled.unpruned is not None:
        evaluations["unpruned_student"] = evaluate(distilled.unpruned)
    if run.model_args.compare_plain:
        plain = train_plain_baseline(
            run.model_args, training_args, teacher.model, student, run.labelled_dataset
        )
        evaluations["plain_student"] = evaluate(plain.student)
        save_model_atomically(plain, run.output_dir / PLAIN_STUDENT_DIR)
    for role, evaluation in evaluations.items():
        for split, (metrics, _) in evaluation.items():
            distilled.trainer.log_metrics(f"{role}_{split}", metrics)
    return evaluations
