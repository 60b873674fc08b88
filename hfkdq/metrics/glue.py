"""The official GLUE metrics, computed offline with scikit-learn and SciPy.

The Hub's GLUE metric script is downloaded at run time, which many machines running this toolkit
cannot do; these pure functions give the same numbers (same key names as the Hub metric
and `run_glue.py`, so results stay comparable) with no network access.

`Glue` publishes them as an `evaluate` metric module (`Glue("mrpc").compute(...)`, `.add_batch(...)`),
so code written against the Hub glue metric (config "mrpc") runs unchanged offline; this file is also a
valid `evaluate.load` script path. `build_glue_compute_metrics` computes through `Glue` as well, so the
Trainer, the evaluation of quantized variants and direct `evaluate` users share one code path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import datasets
import evaluate
import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from hfkdq.glue_tasks import GLUE_TASKS, GlueTask, get_glue_task

if TYPE_CHECKING:
    from transformers import EvalPrediction


def accuracy(predictions: np.ndarray, references: np.ndarray) -> float:
    """Fraction of class ids predicted exactly."""
    return float(accuracy_score(references, predictions))


def f1(predictions: np.ndarray, references: np.ndarray) -> float:
    """F1 of the positive class (id 1: "equivalent" / "duplicate"), as GLUE reports for MRPC and QQP."""
    return float(f1_score(references, predictions, pos_label=1, average="binary", zero_division=0.0))


def matthews_correlation(predictions: np.ndarray, references: np.ndarray) -> float:
    """Matthews correlation: CoLA's metric, because its classes are unbalanced (0 for a constant guess)."""
    return float(matthews_corrcoef(references, predictions))


def pearson(predictions: np.ndarray, references: np.ndarray) -> float:
    """Pearson correlation of scores; 0 when either side is constant (undefined, and no better than chance)."""
    if _is_constant(predictions) or _is_constant(references):
        return 0.0
    return float(stats.pearsonr(predictions, references)[0])


def spearmanr(predictions: np.ndarray, references: np.ndarray) -> float:
    """Spearman rank correlation of scores; 0 when either side is constant, like `pearson`."""
    if _is_constant(predictions) or _is_constant(references):
        return 0.0
    return float(stats.spearmanr(predictions, references)[0])


def _is_constant(values: np.ndarray) -> bool:
    return bool(np.all(values == values[0]))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "matthews_correlation": matthews_correlation,
    "pearson": pearson,
    "spearmanr": spearmanr,
}


def glue_metrics(task: GlueTask | str, predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    """The task's official metrics; with two of them also `combined_score`, their mean (GLUE's task score).

    `predictions` are class ids, or float scores for STS-B; `references` are the gold labels.
    """
    task = get_glue_task(task)
    predictions = np.asarray(predictions)
    references = np.asarray(references).reshape(-1)
    if task.is_regression or (predictions.ndim == 2 and predictions.shape[1] == 1):
        predictions = predictions.reshape(-1)
    if predictions.ndim != 1:
        raise ValueError(
            f"{task.name}: predictions must be one class id per example, got shape {predictions.shape}; "
            "take the argmax of the logits first (build_glue_compute_metrics does)."
        )
    if predictions.shape != references.shape or predictions.size == 0:
        raise ValueError(
            f"{task.name}: need as many predictions as references (and at least one), "
            f"got {predictions.size} and {references.size}."
        )
    if not task.is_regression:
        predictions, references = predictions.astype(np.int64), references.astype(np.int64)
        if (references < 0).any():
            raise ValueError(
                f"{task.name}: references contain -1, the label of unlabelled (test) examples; "
                "metrics need a labelled split."
            )
    else:
        predictions, references = predictions.astype(np.float64), references.astype(np.float64)
    results = {name: METRICS[name](predictions, references) for name in task.metric_names}
    if len(results) > 1:
        results["combined_score"] = float(np.mean(list(results.values())))
    return results


def main_metric_name(task: GlueTask | str) -> str:
    """The one number to select models by: the metric, or `combined_score` for tasks reporting two."""
    task = get_glue_task(task)
    return task.metric_names[0] if len(task.metric_names) == 1 else "combined_score"


class Glue(evaluate.Metric):
    """The GLUE metric as an offline `evaluate` module; the config name is the task ("mrpc", "STS-B", ...).

    A drop-in for the Hub glue metric (config = task): same inputs and key names, computed by
    `glue_metrics`. Two differences, both deliberate: tasks with two metrics also report
    `combined_score` (their mean, as `run_glue.py` adds), and STS-B scores are stored as float64
    rather than the Hub's float32, so `compute` returns exactly what `glue_metrics` does. (Stored
    columns are read back as Python lists, not with evaluate's "numpy" format, which casts floats to
    float32.)
    """

    def _info(self) -> evaluate.MetricInfo:
        task = _task_of_config(self.config_name)
        dtype = "float64" if task.is_regression else "int64"
        return evaluate.MetricInfo(
            description=f"GLUE {task.name}: {', '.join(task.metric_names)}, computed offline.",
            citation=_GLUE_CITATION,
            inputs_description=_GLUE_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value(dtype), "references": datasets.Value(dtype)}
            ),
            homepage="https://gluebenchmark.com/",
            reference_urls=["https://huggingface.co/spaces/evaluate-metric/glue"],
        )

    def _compute(self, predictions: list[float], references: list[float]) -> dict[str, float]:
        return glue_metrics(self.config_name, np.asarray(predictions), np.asarray(references))


def _task_of_config(config_name: str) -> GlueTask:
    """Resolve the module's config name, which must name a task: evaluate's "default" means none was given."""
    if config_name == "default":
        raise ValueError(
            "The GLUE metric needs the task as its config name, e.g. Glue('mrpc') or "
            "offline_metric('glue', 'mrpc'); valid task names are: " + ", ".join(GLUE_TASKS) + "."
        )
    return get_glue_task(config_name)


_GLUE_CITATION = """@inproceedings{wang2019glue,
  title={GLUE: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  booktitle={International Conference on Learning Representations},
  year={2019}
}"""

_GLUE_INPUTS = """
Args:
    predictions: class ids (take the argmax of the logits first), or float scores for STS-B.
    references: gold labels; -1 (an unlabelled test example) is refused.
Returns:
    The task's metrics among accuracy, f1, matthews_correlation, pearson and spearmanr, plus
    combined_score (their mean) for tasks that report two.
"""


def build_glue_compute_metrics(task: GlueTask | str) -> Callable[[EvalPrediction], dict[str, float]]:
    """A `Trainer` `compute_metrics`: logits -> class ids (argmax) or scores (squeeze), then `Glue`.

    A fresh in-memory module per call, so nothing is written to evaluate's cache files and no state
    carries over from an evaluation that raised.
    """
    task = get_glue_task(task)

    def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
        predictions = np.asarray(_first(eval_prediction.predictions))
        references = np.asarray(_first(eval_prediction.label_ids)).reshape(-1)
        if task.is_regression:
            predictions = predictions.reshape(-1)
        else:
            predictions = predictions.argmax(axis=-1)
        metric = Glue(task.name, keep_in_memory=True)
        return metric.compute(predictions=predictions, references=references)

    return compute_metrics


def _first(value):
    """Models may return extra outputs (hidden states, teacher logits): the logits come first."""
    return value[0] if isinstance(value, tuple | list) else value
