"""results.json, assembled in one place from what the stages hold in memory, and written whole."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hfkdq.environment import capture_environment
from hfkdq.experiment.run_setup import RunSetup
from hfkdq.experiment.training import DistilStage, TeacherStage
from hfkdq.layout import PLAIN_STUDENT_DIR, RESULTS_FILE, UNPRUNED_STUDENT_DIR
from hfkdq.loss_terms import active_terms, distillation_settings
from hfkdq.outputs import write_json_atomically
from hfkdq.report import format_summary
from hfkdq.students import count_parameters
from hfkdq.tasks import TaskData


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
