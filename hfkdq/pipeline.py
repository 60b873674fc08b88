"""The experiment flow both recipes share: teacher -> student -> distill -> evaluate -> save.

A recipe only builds its `TaskData` (NER or GLUE); everything after that is the same code, so the
two recipes cannot drift apart in how they fine-tune, distill, evaluate or save.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, Trainer, set_seed

from hfkdq.arguments import ModelArguments
from hfkdq.augment import augmented_training_set
from hfkdq.checkpoints import check_checkpoint_fits, resolve_resume_checkpoint
from hfkdq.compatibility import check_cross_tokenizer_terms
from hfkdq.config import DistillationArguments
from hfkdq.environment import capture_environment
from hfkdq.layout import (
    PLAIN_STUDENT_DIR,
    QUANTIZED_DIR,
    RESULTS_FILE,
    STUDENT_DIR,
    TEACHER_DIR,
    UNPRUNED_STUDENT_DIR,
)
from hfkdq.loss_terms import WEIGHT_FIELDS, active_terms, distillation_settings
from hfkdq.outputs import remove_stale_staging, save_model_atomically, write_json_atomically
from hfkdq.report import format_summary
from hfkdq.resources import resolve_model_name_or_path
from hfkdq.run_dir import check_not_finished, claimed_run, run_lock
from hfkdq.student_init import DEFAULT_STUDENT_NUM_LAYERS, choose_init_layers
from hfkdq.student_tokenizer import (
    StudentData,
    check_student_vocabulary,
    load_student_tokenizer,
    paired_training_set,
)
from hfkdq.students import check_student_depth, count_parameters, load_student, make_student
from hfkdq.tasks import TaskData
from hfkdq.teacher import TeacherSource, prepare_teacher
from hfkdq.teacher_checks import check_teacher_above_chance, warn_if_still_improving
from hfkdq.trainer import DistillationTrainer
from hfkdq.transfer import check_transfer_ratio, mix_transfer, raw_transfer_examples, transfer_examples

logger = logging.getLogger(__name__)


def load_tokenizer(model_args: ModelArguments):
    """The teacher's tokenizer (also the student's, unless a pretrained student brings its own)."""
    return AutoTokenizer.from_pretrained(resolve_model_name_or_path(model_args.teacher_name_or_path))


def run_experiment(
    model_args: ModelArguments,
    training_args: DistillationArguments,
    task: TaskData,
    tokenizer,
    data_args: Any = None,
    student_data: StudentData | None = None,
    teacher_source: TeacherSource | None = None,
) -> dict[str, Any]:
    """`run_experiment_unlocked` with one run per output directory: a lock refuses a concurrent run, a
    finished directory is replaced only with ``--overwrite_output_dir``, and a failed re-run leaves the
    previous run's outputs as they were."""
    output_dir = Path(training_args.output_dir)
    overwrite, resuming = training_args.overwrite_output_dir, bool(training_args.resume_from_checkpoint)
    check_not_finished(output_dir, overwrite, resuming, restore=training_args.process_index == 0)
    arguments = (model_args, training_args, task, tokenizer, data_args, student_data, teacher_source)
    if training_args.process_index != 0:
        return run_experiment_unlocked(*arguments)
    with run_lock(output_dir):
        for stale in remove_stale_staging(output_dir):
            logger.warning("Removed %s, left by an interrupted run.", stale)
        with claimed_run(output_dir, overwrite, resuming):
            return run_experiment_unlocked(*arguments)


def run_experiment_unlocked(
    model_args: ModelArguments,
    training_args: DistillationArguments,
    task: TaskData,
    tokenizer,
    data_args: Any = None,
    student_data: StudentData | None = None,
    teacher_source: TeacherSource | None = None,
) -> dict[str, Any]:
    """Fine-tune or load the teacher, build and distill the student, evaluate both, save everything;
    then quantize and publish when asked. Each stage is a function below, in this order.

    Writes ``<output_dir>/student`` (plain student + tokenizer), ``<output_dir>/teacher`` when the
    teacher was fine-tuned here, and ``<output_dir>/results.json``; each is written to a temporary
    name first so a failed run leaves no half-written model behind. With ``--push_to_hub`` the run is
    published through `hfkdq.hub` at the very end (after quantization, gated by ``--max_metric_drop``);
    the Trainers never push: they would publish checkpoints and the bare student without its card.
    `data_args` (the recipe's data arguments) are recorded in results.json for the model card.
    `student_data` is the student's own task data and tokenizer when it does not read the teacher's
    tokens (`hfkdq.student_tokenizer`); it then trains on a paired set and is evaluated on its own.
    `teacher_source` is the resolved `--teacher_name_or_path` when the caller has it already.
    """
    started = time.perf_counter()
    run = prepare_run(model_args, training_args, task, tokenizer, student_data, teacher_source)
    teacher = teacher_stage(run, task, tokenizer)
    set_seed(run.training_args.seed)
    student_model = build_student(run.model_args, teacher.model)
    check_checkpoint_fits(run.resume_checkpoint, student_model.config.to_dict())
    distilled = distil_stage(run, task, tokenizer, teacher, student_model)
    evaluations = evaluate_stage(run, teacher, distilled)
    results = assemble_results(run, task, data_args, teacher, distilled, evaluations, started)
    if distilled.trainer.is_world_process_zero():
        write_results(run.output_dir, results, task.main_metric)
        metric_drop = quantize_stage(run, results, teacher, distilled)
        publish_stage(run, results)
        if metric_drop is not None:
            raise metric_drop
    distilled.trainer.accelerator.wait_for_everyone()
    return results


@dataclasses.dataclass
class RunSetup:
    """What `prepare_run` checked and built before the teacher is touched: every later stage reads it."""

    model_args: ModelArguments
    training_args: DistillationArguments
    """With ``push_to_hub`` off: the run publishes itself at the end (`publish_stage`)."""
    output_dir: Path
    teacher: TeacherSource
    student: StudentData
    labelled_dataset: Any
    """The gold training examples, in the student's tokens."""
    train_dataset: Any
    """What the student trains on before transfer data is mixed in (labelled, augmented or paired)."""
    transfer: Any
    resume_checkpoint: str | None
    hub_model_id: str | None


def prepare_run(
    model_args: ModelArguments,
    training_args: DistillationArguments,
    task: TaskData,
    tokenizer,
    student_data: StudentData | None,
    teacher_source: TeacherSource | None,
) -> RunSetup:
    """Every check that can fail without training, so a bad run fails in seconds: the Hub destination,
    the quantization methods and split, the student's shape and vocabulary, augmentation, transfer data."""
    output_dir = Path(training_args.output_dir)
    hub_model_id = None
    if training_args.push_to_hub:
        from hfkdq.hub import check_can_push, check_repo_id

        # Checked now, not after hours of training: a bad repo id, offline mode or a missing token.
        hub_model_id = check_repo_id(training_args.hub_model_id or output_dir.absolute().name)
        check_can_push(getattr(training_args, "hub_token", None))
        training_args = dataclasses.replace(training_args, push_to_hub=False)
    if model_args.quantize:
        from hfkdq.quantization.registry import parse_methods

        parse_methods(
            model_args.quantize
        )  # as at parsing, for model_args changed since: fail before training
        quantization_split(model_args, task)
    resume_checkpoint = resolve_resume_checkpoint(training_args.resume_from_checkpoint, output_dir)
    check_checkpoint_fits(resume_checkpoint, {"num_hidden_layers": student_depth(model_args)})
    model_args = with_resumed_teacher(model_args, training_args, output_dir)
    if teacher_source is None or teacher_source.name != model_args.teacher_name_or_path:
        teacher_source = TeacherSource.resolve(model_args.teacher_name_or_path)
    student = student_data or StudentData(task, tokenizer)
    if not model_args.student_name_or_path:
        # A student the teacher cannot give its layers to fails now, not after the teacher's fine-tuning.
        choose_init_layers(
            model_args.student_layers, student_depth(model_args), teacher_source.config.num_hidden_layers
        )
    else:
        student_source = resolve_model_name_or_path(model_args.student_name_or_path)
        student_config = AutoConfig.from_pretrained(student_source)
        check_student_depth(
            model_args.student_num_layers,
            model_args.student_layers,
            student_config.num_hidden_layers,
            student_source,
        )
        if student_data is None and load_student_tokenizer(student_source, tokenizer) is not None:
            # Caught now, not after the teacher's fine-tuning (Python callers; the recipes pass it).
            raise ValueError(
                f"student {student_source} has its own tokenizer, and run_experiment got no student_data: pass "
                "student_data=StudentData(build_task(data_args, its tokenizer), its tokenizer, own_tokenizer=True)"
            )
        check_student_vocabulary(student_config, student.tokenizer, student_source)
    if model_args.prune_ffn_keep is not None:
        # A keep share that leaves no neuron, or a student without a BERT-style FFN, fails before training.
        check_prunable_config(model_args)
    train_dataset = task.train_dataset
    if student.own_tokenizer:
        check_cross_tokenizer_terms(training_args, True, task.head == "token", task.head == "token")
        if model_args.augment:
            raise ValueError(
                "--augment makes new views with the teacher's tokenizer, and this student reads its own "
                "tokens: drop --augment (or use a student that shares the teacher's tokenizer)"
            )
        # Each model reads its own tokens of the same text; built before the teacher is fine-tuned.
        train_dataset = paired_training_set(task, student.task)
    labelled_dataset = train_dataset
    if model_args.augment:
        # Built (and checked) before the teacher is fine-tuned; the teacher trains on the plain set.
        train_dataset = augmented_training_set(
            task,
            tokenizer,
            model_args.augment,
            model_args.augment_probability,
            model_args.augment_rate,
            training_args.seed,
        )
    check_teacher_cache_settings(model_args, training_args)
    transfer = None
    if model_args.transfer_file or model_args.transfer_train_remainder:
        if model_args.augment:
            raise ValueError(
                "use --augment or transfer data (--transfer_file, --transfer_train_remainder), not both"
            )
        # Read and tokenized before the teacher is fine-tuned: a bad or empty source fails now.
        if student.own_tokenizer:
            transfer = paired_training_set(
                task,
                student.task,
                raw_transfer_examples(task, model_args.transfer_file, model_args.transfer_train_remainder),
            )
        else:
            transfer = transfer_examples(task, model_args.transfer_file, model_args.transfer_train_remainder)
        check_transfer_ratio(model_args.transfer_ratio)
        model_args = with_transfer_cache(model_args, training_args)
    set_seed(training_args.seed)
    return RunSetup(
        model_args,
        training_args,
        output_dir,
        teacher_source,
        student,
        labelled_dataset,
        train_dataset,
        transfer,
        resume_checkpoint,
        hub_model_id,
    )


def with_resumed_teacher(
    model_args: ModelArguments, training_args: DistillationArguments, output_dir: Path
) -> ModelArguments:
    """A resumed run whose interrupted part had finished fine-tuning its teacher (whether or not the
    student had reached a checkpoint) continues with that teacher rather than fine-tune it again."""
    teacher_dir = output_dir / TEACHER_DIR
    if (
        training_args.resume_from_checkpoint
        and model_args.teacher_name_or_path != str(teacher_dir)
        and (teacher_dir / "config.json").is_file()
    ):
        logger.info("Resuming: using the teacher fine-tuned before the interruption, %s.", teacher_dir)
        return dataclasses.replace(model_args, teacher_name_or_path=str(teacher_dir))
    return model_args


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
    evaluation = evaluate_on_splits(_evaluator(model, run.training_args, task, tokenizer), task)
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
            _evaluator(model, training_args, student.task, student.tokenizer), student.task
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


def assemble_results(
    run: RunSetup,
    task: TaskData,
    data_args: Any,
    teacher: TeacherStage,
    distilled: DistilStage,
    evaluations: dict[str, dict[str, tuple[dict[str, float], str | None]]],
    started: float,
) -> dict[str, Any]:
    """The run's results.json, in one place: task, teacher, student (and plain baseline), distillation
    settings, data, environment, training metrics, per-type reports, wall time."""
    model_args, training_args, output_dir = run.model_args, run.training_args, run.output_dir
    student_model, transfer = distilled.trainer.student, run.transfer
    metrics = {
        role: {split: split_metrics for split, (split_metrics, _) in evaluation.items()}
        for role, evaluation in evaluations.items()
    }
    results: dict[str, Any] = {
        "task": {"head": task.head, "labels": task.label_names, "main_metric": task.main_metric},
        "teacher": {
            "name_or_path": teacher.source,
            "base_model": model_args.teacher_name_or_path,
            "num_parameters": count_parameters(teacher.model),
            "num_layers": teacher.model.config.num_hidden_layers,
            "metrics": metrics["teacher"],
            "learning_curve": teacher.learning_curve,
            "still_improving": teacher.still_improving,
            "chance": teacher.chance,
        },
        "student": {
            "path": str(distilled.saved.path),
            "num_parameters": count_parameters(student_model),
            "num_layers": student_model.config.num_hidden_layers,
            "initialised_from_teacher_layers": getattr(student_model.config, "distilled_from_layers", None),
            "name_or_path": model_args.student_name_or_path,
            "init": model_args.student_layers
            if not model_args.student_name_or_path or model_args.student_num_layers is not None
            else None,
            "tokenizer": "own" if run.student.own_tokenizer else "teacher's",
            "augment": model_args.augment,
            "augment_probability": model_args.augment_probability if model_args.augment else None,
            "transfer_file": model_args.transfer_file,
            "transfer_train_remainder": model_args.transfer_train_remainder,
            "teacher_cache": None if distilled.cache is None else str(distilled.cache.path),
            "transfer_examples": None
            if transfer is None
            else len(distilled.train_dataset) - len(task.train_dataset),
            "metrics": metrics["student"],
        },
        "distillation": {
            **distillation_settings(training_args),
            "active_terms": [term.name for term in active_terms(training_args)],
            **{
                name: getattr(training_args, name)
                for name in ("learning_rate", "num_train_epochs", "max_steps", "seed")
            },
        },
        "data": data_record(data_args),
        "environment": capture_environment(),
        "train_metrics": distilled.train_result.metrics,
        "reports": {
            f"{role}/{split}": report
            for role, evaluation in evaluations.items()
            for split, (_, report) in evaluation.items()
            if report is not None
        },
    }
    if "plain_student" in metrics:
        results["plain_student"] = {
            "path": str(output_dir / PLAIN_STUDENT_DIR),
            "metrics": metrics["plain_student"],
        }
    if distilled.pruning is not None:
        results["pruning"] = distilled.pruning
        results["unpruned_student"] = {
            "path": str(output_dir / UNPRUNED_STUDENT_DIR),
            "metrics": metrics["unpruned_student"],
        }
    results["wall_time_s"] = round(time.perf_counter() - started, 1)
    return results


def write_results(output_dir: Path, results: dict[str, Any], main_metric: str) -> None:
    """results.json (whole or not at all), then the per-type reports and the summary on stdout."""
    write_json_atomically(output_dir / RESULTS_FILE, results)
    for name, report in results["reports"].items():
        print(f"\n{name} per-type report\n{report}")
    print(format_summary(results, main_metric))


def quantize_stage(
    run: RunSetup, results: dict[str, Any], teacher: TeacherStage, distilled: DistilStage
) -> Exception | None:
    """With --quantize: quantize the saved student, measure every variant, record it in results.json.

    A variant that fails the quality gate fails the run; when the run is published, the passing
    variants still are, so the gate's `MetricDropError` is returned to be raised after the push.
    """
    if not run.model_args.quantize:
        return None
    from hfkdq.quantization.artifacts import SavedModel
    from hfkdq.quantization.errors import MetricDropError

    # The teacher row is measured on the student's evaluation features: only when it reads them; the
    # teacher in memory is described as is (its directory is only read for its size).
    teacher_dir = None
    if not run.student.own_tokenizer and Path(teacher.source).is_dir():
        teacher_dir = SavedModel(Path(teacher.source), teacher.model.config, run.student.task.head)
    metric_drop = None
    try:
        results["quantization"] = quantize_student(
            run.model_args, run.student.task, distilled.saved, teacher_dir
        )
    except MetricDropError as error:
        if run.hub_model_id is None:
            raise
        metric_drop = error
    write_json_atomically(run.output_dir / RESULTS_FILE, results)
    return metric_drop


def publish_stage(run: RunSetup, results: dict[str, Any]) -> None:
    """With --push_to_hub: publish the run (student, passing variants, card) from the results in memory."""
    if run.hub_model_id is None:
        return
    from hfkdq.hub import push_to_hub

    push_to_hub(
        run.output_dir,
        run.hub_model_id,
        max_metric_drop=run.model_args.max_metric_drop,
        private=bool(getattr(run.training_args, "hub_private_repo", False)),
        token=getattr(run.training_args, "hub_token", None),
        run_results=results,
    )


def data_record(data_args: Any) -> dict[str, Any] | None:
    """Which data the run used (Hub id, task, files), as results.json records it for the model card."""
    if data_args is None:
        return None
    record = {
        name: getattr(data_args, name)
        for name in ("dataset_name", "dataset_config_name", "task_name")
        if getattr(data_args, name, None)
    }
    files = data_args.data_files() if callable(getattr(data_args, "data_files", None)) else None
    if files:
        record["files"] = {split: str(path) for split, path in files.items()}
    return record


def quantization_split(model_args: ModelArguments, task: TaskData) -> str:
    """The split the quantized variants are compared on; a split the run does not have is refused before
    training, not after it."""
    if not task.eval_splits:
        raise ValueError("--quantize needs an evaluation split to measure what each variant loses")
    split = model_args.quantize_eval_split or task.eval_splits[0]
    if split not in task.eval_splits:
        raise ValueError(
            f"--quantize_eval_split {split!r} is not one of this run's evaluation splits "
            f"({', '.join(task.eval_splits)}): pass one of those, or give its file (e.g. --test_file)"
        )
    return split


def quantize_student(model_args: ModelArguments, task: TaskData, student: Any, teacher: Any = None) -> dict:
    """Quantize the saved student (a `SavedModel`, or its directory) with each requested method and
    evaluate every variant the same way, into the run's quantized/; `teacher` (a `SavedModel` or a
    directory) is measured beside them."""
    from hfkdq.quantization.workflow import quantize_and_evaluate

    split = quantization_split(model_args, task)
    student_dir = Path(getattr(student, "path", student))
    quantization = quantize_and_evaluate(
        student,
        model_args.quantize,
        student_dir.parent / QUANTIZED_DIR,
        eval_dataset=task.features[split],
        data_collator=task.data_collator,
        compute_metrics=task.compute_metrics,
        calibration_dataset=task.train_dataset,
        max_metric_drop=model_args.max_metric_drop,
        teacher_dir=teacher,
        main_metric=task.main_metric,
        latency_repeats=model_args.latency_repeats,
        latency_warmup=model_args.latency_warmup,
        overwrite=True,
        mixed_precision=model_args.mixed_precision,
    )
    return quantization | {"eval_split": split}


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


def student_depth(model_args: ModelArguments) -> int | None:
    """Blocks the student keeps: --student_num_layers, else 3 of the teacher's or all of its own."""
    if model_args.student_num_layers is not None or model_args.student_name_or_path:
        return model_args.student_num_layers
    return DEFAULT_STUDENT_NUM_LAYERS


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


CACHE_FIX = (
    "Pass --teacher_cache auto (kept in <output_dir>/teacher-cache), a new or empty directory, or delete it."
)


def check_prunable_config(model_args: ModelArguments) -> None:
    """The student's FFN width (from the teacher's or the student's config) must survive --prune_ffn_keep."""
    from hfkdq.pruning import neurons_to_keep
    from hfkdq.pruning.ffn import intermediate_size_key

    source = model_args.student_name_or_path or model_args.teacher_name_or_path
    config = AutoConfig.from_pretrained(resolve_model_name_or_path(source))
    neurons_to_keep(model_args.prune_ffn_keep, getattr(config, intermediate_size_key(config)))


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


def check_teacher_cache_settings(model_args: ModelArguments, training_args: DistillationArguments) -> None:
    """The cache holds logits for the fixed training set: refuse it where that is not what trains, and
    refuse a directory that is not a cache before the teacher is fine-tuned."""
    if not model_args.teacher_cache:
        return
    if model_args.teacher_cache != "auto":
        from hfkdq.teacher_cache import cache_problem

        problem = cache_problem(model_args.teacher_cache)
        if problem is not None:
            raise ValueError(
                f"--teacher_cache {model_args.teacher_cache} is not a teacher-output cache: {problem}. {CACHE_FIX}"
            )
    if model_args.augment:
        raise ValueError(
            "--teacher_cache stores the teacher's logits for the fixed training set; --augment changes what "
            "trains every epoch, so it needs the live teacher: drop one of them"
        )
    layer_terms = [term.name for term in active_terms(training_args) if term.uses_layer_map]
    if layer_terms:
        raise ValueError(
            f"--teacher_cache stores logits only, but the {', '.join(layer_terms)} term(s) read the teacher's "
            "hidden states or attentions: set their weights to 0 or drop --teacher_cache"
        )


def with_transfer_cache(model_args: ModelArguments, training_args: DistillationArguments) -> ModelArguments:
    """Transfer data is labelled by the teacher once, into the cache ('auto' unless one is named), so no
    training step on it runs the teacher; only layer-wise terms, which read more than logits, keep the
    live teacher."""
    if model_args.teacher_cache or any(term.uses_layer_map for term in active_terms(training_args)):
        return model_args
    return dataclasses.replace(model_args, teacher_cache="auto")


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
        if (directory / CACHE_METADATA).is_file():
            try:
                TeacherOutputCache.load(directory).check(teacher, train_dataset)
            except StaleTeacherCacheError as error:
                if model_args.teacher_cache != "auto":
                    # A directory the user named is not silently replaced.
                    raise StaleTeacherCacheError(
                        f"--teacher_cache {directory}: {error} {CACHE_FIX}"
                    ) from None
                logger.info("Rebuilding the stale teacher cache in %s for this teacher and data.", directory)
                build_teacher_cache(
                    teacher,
                    train_dataset,
                    task.data_collator,
                    directory,
                    teacher_name_or_path=teacher_source,
                    overwrite=True,
                )
        else:
            build_teacher_cache(
                teacher,
                train_dataset,
                task.data_collator,
                directory,
                teacher_name_or_path=teacher_source,
                # An empty directory is free, and 'auto' is the run's own: what is there is rebuilt.
                overwrite=model_args.teacher_cache == "auto"
                or (directory.is_dir() and not any(directory.iterdir())),
            )
    return TeacherOutputCache.load(directory)


def evaluate_on_splits(evaluator: Trainer, task: TaskData) -> dict[str, tuple[dict[str, float], str | None]]:
    """Metrics (and the per-type report, where the task has one) of one model on every evaluation split."""
    evaluation = {}
    for split in task.eval_splits:
        prediction = evaluator.predict(task.features[split], metric_key_prefix=split)
        metrics = {key.removeprefix(f"{split}_"): value for key, value in prediction.metrics.items()}
        report = task.classification_report(prediction) if task.classification_report is not None else None
        evaluation[split] = (metrics, report)
    return evaluation


def warn_if_weak_teacher(evaluation: dict, task: TaskData, threshold: float) -> None:
    """Distillation cannot beat a teacher that is itself under-trained: say so before distilling."""
    if not evaluation:
        return
    split = next(iter(evaluation))
    value = evaluation[split][0].get(task.main_metric)
    if value is not None and value < threshold:
        logger.warning(
            "The teacher's %s %s is %.4f, below %.2f: distilling from it is unlikely to beat plain "
            "fine-tuning. Train the teacher longer or on more data, pass a stronger --teacher_name_or_path, "
            "or set --kd_weight 0.",
            split,
            task.main_metric,
            value,
            threshold,
        )


def _evaluator(
    model: PreTrainedModel, training_args: DistillationArguments, task: TaskData, tokenizer
) -> Trainer:
    """A plain Trainer for evaluation, so the teacher goes through the same loop and metric code."""
    eval_args = dataclasses.replace(training_args, resume_from_checkpoint=None)
    return Trainer(
        model=model,
        args=eval_args,
        processing_class=tokenizer,
        data_collator=task.data_collator,
        compute_metrics=task.compute_metrics,
    )
