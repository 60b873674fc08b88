"""After training: the saved student quantized and measured beside its teacher, then the run published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hfkdq.arguments import ModelArguments
from hfkdq.experiment.run_setup import RunSetup, quantization_split
from hfkdq.experiment.training import DistilStage, TeacherStage
from hfkdq.layout import QUANTIZED_DIR, RESULTS_FILE
from hfkdq.outputs import write_json_atomically
from hfkdq.tasks import TaskData


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
