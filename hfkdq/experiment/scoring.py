"""One evaluation loop for every model of a run (teacher, student, plain baseline): a plain `Trainer`,
so losses and metrics are comparable and no teacher forward runs per student batch."""

from __future__ import annotations

import dataclasses
import logging

from transformers import PreTrainedModel, Trainer

from hfkdq.config import DistillationArguments
from hfkdq.tasks import TaskData

logger = logging.getLogger(__name__)


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


def plain_evaluator(
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
