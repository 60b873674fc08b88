"""GLUE metrics: each official metric against values worked out by hand, and the Trainer adapter."""

from __future__ import annotations

import math

import numpy as np
import pytest
from transformers import EvalPrediction

from hfkdq.metrics.glue import build_glue_compute_metrics, glue_metrics, main_metric_name


def test_matthews_correlation_of_a_small_confusion_matrix():
    # TP=3, TN=2, FP=1, FN=1: (3*2 - 1*1) / sqrt(4 * 4 * 3 * 3) = 5/12
    references = np.array([1, 1, 1, 1, 0, 0, 0])
    predictions = np.array([1, 1, 1, 0, 0, 0, 1])
    assert glue_metrics("cola", predictions, references) == {"matthews_correlation": pytest.approx(5 / 12)}


def test_matthews_correlation_of_a_constant_guess_is_zero():
    assert glue_metrics("cola", np.ones(4), np.array([0, 1, 1, 0]))["matthews_correlation"] == 0.0


def test_accuracy_and_positive_class_f1_for_paraphrase_tasks():
    # TP=2, FP=1, FN=1, TN=1: accuracy 3/5, F1 = 2*2 / (2*2 + 1 + 1) = 2/3
    predictions = np.array([1, 1, 0, 0, 1])
    references = np.array([1, 0, 0, 1, 1])
    for task in ("mrpc", "qqp"):
        assert glue_metrics(task, predictions, references) == {
            "accuracy": pytest.approx(0.6),
            "f1": pytest.approx(2 / 3),
            "combined_score": pytest.approx((0.6 + 2 / 3) / 2),
        }


@pytest.mark.parametrize("task", ["sst2", "mnli", "qnli", "rte", "wnli"])
def test_accuracy_only_tasks(task):
    assert glue_metrics(task, np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])) == {"accuracy": 0.75}


def test_perfectly_correlated_scores():
    references = np.array([0.0, 1.0, 2.5, 4.0, 5.0])
    result = glue_metrics("stsb", 2 * references + 1, references)
    assert result == {
        "pearson": pytest.approx(1.0),
        "spearmanr": pytest.approx(1.0),
        "combined_score": pytest.approx(1.0),
    }
    assert glue_metrics("stsb", -references, references)["pearson"] == pytest.approx(-1.0)


def test_monotonic_but_nonlinear_scores_rank_perfectly_but_are_not_linear():
    references = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    result = glue_metrics("STS-B", np.exp(references), references)
    assert result["spearmanr"] == pytest.approx(1.0)
    assert result["pearson"] < 0.95


def test_constant_scores_correlate_zero_not_nan():
    result = glue_metrics("stsb", np.full(4, 2.5), np.array([1.0, 2.0, 3.0, 4.0]))
    assert result["pearson"] == 0.0 and result["spearmanr"] == 0.0
    assert not any(math.isnan(value) for value in result.values())


def test_mismatched_lengths_and_logits_are_rejected():
    with pytest.raises(ValueError, match="as many predictions as references"):
        glue_metrics("sst2", np.array([0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="argmax"):
        glue_metrics("sst2", np.zeros((3, 2)), np.array([0, 1, 1]))


def test_unlabelled_references_are_rejected():
    with pytest.raises(ValueError, match="unlabelled"):
        glue_metrics("rte", np.array([0, 1]), np.array([-1, -1]))


def test_main_metric_is_the_single_metric_or_the_combined_score():
    assert main_metric_name("cola") == "matthews_correlation"
    assert main_metric_name("sst2") == "accuracy"
    assert main_metric_name("mrpc") == "combined_score"
    assert main_metric_name("stsb") == "combined_score"


def test_compute_metrics_takes_the_argmax_of_classification_logits():
    logits = np.array([[2.0, 0.1, 0.0], [0.0, 0.0, 3.0], [0.0, 1.0, 0.5]])
    compute = build_glue_compute_metrics("mnli")
    assert compute(EvalPrediction(predictions=logits, label_ids=np.array([0, 2, 2]))) == {
        "accuracy": pytest.approx(2 / 3)
    }


def test_compute_metrics_uses_the_first_of_several_model_outputs():
    logits = np.array([[0.0, 1.0], [1.0, 0.0]])
    hidden = np.zeros((2, 5, 4))
    compute = build_glue_compute_metrics("sst2")
    assert compute(EvalPrediction(predictions=(logits, hidden), label_ids=np.array([1, 0]))) == {
        "accuracy": 1.0
    }


def test_compute_metrics_squeezes_regression_outputs():
    scores = np.array([[0.5], [1.5], [4.0]])
    compute = build_glue_compute_metrics("stsb")
    result = compute(
        EvalPrediction(predictions=scores, label_ids=np.array([1.0, 2.0, 4.5], dtype=np.float32))
    )
    assert result["spearmanr"] == pytest.approx(1.0)
