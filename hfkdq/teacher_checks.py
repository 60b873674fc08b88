"""Is the teacher worth distilling? Its chance level, and whether it was still learning when it stopped.

A student cannot keep what its teacher never learned, and retention against a weak teacher looks
better than it is. Two checks, both read from what a run already has (the evaluation split's labels,
the teacher's per-epoch validation curve):

- the chance level of the main metric: the score of always predicting the majority class, computed
  by the task's own `compute_metrics` (accuracy: the majority share; entity F1: 0; MCC and
  correlations: 0). A teacher within `CHANCE_MARGIN` of it has not learned the task.
- whether the validation metric was still rising at the last epoch: more epochs would likely have
  given a stronger teacher.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any, NamedTuple

import numpy as np
from transformers import EarlyStoppingCallback, EvalPrediction

from hfkdq.tasks import TaskData

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
CHANCE_MARGIN = 0.01
"""A metric (0-1) at most this far above its chance level counts as chance: one point."""


class ChanceLevel(NamedTuple):
    value: float
    baseline: str
    """How a model that learned nothing reaches it, e.g. "always predicting 'O'"."""


def chance_level(task: TaskData, split: str) -> ChanceLevel:
    """The main metric of always predicting the split's most frequent label (a constant for regression)."""
    labels = task.features[split]["labels"]
    if task.label_names is None:
        return ChanceLevel(0.0, "a constant score (it correlates with nothing)")
    rows = [row if isinstance(row, list) else [row] for row in labels]
    counts = Counter(label for row in rows for label in row if label != IGNORE_INDEX)
    if not counts:
        return ChanceLevel(0.0, "no labelled example")
    majority = counts.most_common(1)[0][0]
    if task.head == "token":
        width = max(len(row) for row in rows)
        label_ids = np.full((len(rows), width), IGNORE_INDEX)
        for index, row in enumerate(rows):
            label_ids[index, : len(row)] = row
        logits = np.zeros((len(rows), width, task.num_labels), dtype=np.float32)
    else:
        label_ids = np.asarray(labels)
        logits = np.zeros((len(rows), task.num_labels), dtype=np.float32)
    logits[..., majority] = 1.0
    value = task.compute_metrics(EvalPrediction(predictions=logits, label_ids=label_ids)).get(
        task.main_metric
    )
    value = 0.0 if value is None or not math.isfinite(value) else float(value)
    return ChanceLevel(value, f"always predicting {task.label_names[majority]!r}")


def check_teacher_above_chance(
    evaluation: dict[str, tuple[dict[str, float], Any]], task: TaskData
) -> dict[str, Any] | None:
    """Warn, naming the metric and its chance level, when the teacher scores at chance on the first
    evaluation split; what results.json records about it (None without an evaluation split)."""
    if not evaluation:
        return None
    split = next(iter(evaluation))
    value = evaluation[split][0].get(task.main_metric)
    chance = chance_level(task, split)
    at_chance = value is not None and value <= chance.value + CHANCE_MARGIN
    if at_chance:
        logger.warning(
            "The teacher's %s %s is %.4f, at chance level: %s scores %.4f. It has not learned the task, so "
            "its student cannot learn it from it: train the teacher longer or at another "
            "--teacher_learning_rate, or pass a stronger --teacher_name_or_path.",
            split,
            task.main_metric,
            value,
            chance.baseline,
            chance.value,
        )
    return {
        "split": split,
        "metric": task.main_metric,
        "chance_level": round(chance.value, 4),
        "chance_baseline": chance.baseline,
        "at_chance": at_chance,
    }


def still_improving(curve: list[dict[str, float]], metric: str) -> bool | None:
    """Whether the validation metric rose at the last epoch to its best so far (None: under 2 epochs)."""
    values = [entry[f"eval_{metric}"] for entry in curve if f"eval_{metric}" in entry]
    if len(values) < 2:
        return None
    return values[-1] > max(values[:-1])


def warn_if_still_improving(curve: list[dict[str, float]], metric: str) -> bool | None:
    """`still_improving`, with a warning that more epochs would likely give a stronger teacher."""
    improving = still_improving(curve, metric)
    if improving:
        values = [entry[f"eval_{metric}"] for entry in curve if f"eval_{metric}" in entry]
        logger.warning(
            "The teacher's validation %s was still rising at its last epoch (%s): more "
            "--teacher_num_train_epochs would likely give a stronger teacher.",
            metric,
            " -> ".join(f"{value:.4f}" for value in values),
        )
    return improving


class PatientEarlyStopping(EarlyStoppingCallback):
    """Early stopping whose patience starts once the metric has beaten its chance level.

    On small data an NER teacher predicts only O for its first epochs (F1 exactly 0), and a
    classifier may predict the majority class (accuracy at chance); the stock callback would read
    that plateau as "no improvement" and stop a teacher that has not started to learn.
    """

    def __init__(self, early_stopping_patience: int, chance: float = 0.0):
        super().__init__(early_stopping_patience)
        self.chance = chance

    def check_metric_value(self, args, state, control, metric_value):
        if state.best_metric is None or state.best_metric <= self.chance + CHANCE_MARGIN:
            self.early_stopping_patience_counter = 0
            return
        super().check_metric_value(args, state, control, metric_value)
