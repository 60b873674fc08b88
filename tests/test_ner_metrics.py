"""Entity-level NER scores, checked against counts done by hand."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import EvalPrediction

from hfkdq.metrics.ner import (
    build_ner_compute_metrics,
    logits_to_tag_sequences,
    ner_classification_report,
    ner_metrics,
)

NAMES = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
X = -100

# "Ada Lovelace visited London": 2 gold entities, PER "Ada Lovelace" and LOC "London".
GOLD = [["B-PER", "I-PER", "O", "B-LOC"]]
# Predicted: the PER right, LOC missed, and a spurious one-word PER on "visited".
PREDICTED = [["B-PER", "I-PER", "B-PER", "O"]]


def test_one_right_one_missed_one_spurious_gives_half_precision_and_recall():
    scores = ner_metrics(PREDICTED, GOLD)

    assert scores["precision"] == pytest.approx(0.5)  # 1 correct of 2 predicted
    assert scores["recall"] == pytest.approx(0.5)  # 1 found of 2 gold
    assert scores["f1"] == pytest.approx(0.5)
    assert scores["accuracy"] == pytest.approx(0.5)  # tokens 1 and 2 of 4 right


def test_per_type_scores_and_support_are_flat_floats():
    scores = ner_metrics(PREDICTED, GOLD)

    assert scores["PER_precision"] == pytest.approx(0.5)
    assert scores["PER_recall"] == pytest.approx(1.0)
    assert scores["PER_f1"] == pytest.approx(2 / 3)
    assert scores["PER_number"] == 1.0
    assert (scores["LOC_precision"], scores["LOC_recall"], scores["LOC_f1"], scores["LOC_number"]) == (
        0,
        0,
        0,
        1,
    )
    assert all(type(value) is float for value in scores.values())


def test_a_wrong_boundary_is_no_match():
    scores = ner_metrics([["B-PER", "O"]], [["B-PER", "I-PER"]])

    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)


def test_a_stray_i_tag_opens_an_entity_as_in_conlleval():
    """The default (conlleval-compatible) mode reads a predicted O, I-PER as an entity, not as nothing."""
    scores = ner_metrics([["O", "I-PER"]], [["O", "B-PER"]])

    assert scores["f1"] == 1.0


def test_no_predicted_entities_scores_zero_without_raising():
    scores = ner_metrics([["O", "O"]], [["B-LOC", "O"]])

    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("predicted", "gold", "message"),
    [([["O"]], [["O"], ["O"]], "1 predicted sentences but 2"), ([["O"]], [["O", "O"]], "sentence 0")],
)
def test_misaligned_inputs_are_refused(predicted, gold, message):
    with pytest.raises(ValueError, match=message):
        ner_metrics(predicted, gold)


def test_classification_report_lists_each_type_with_the_asked_digits():
    report = ner_classification_report(PREDICTED, GOLD, digits=3)

    assert "LOC" in report and "PER" in report and "micro avg" in report
    assert "0.667" in report and "0.6667" not in report


def test_logits_are_argmaxed_and_positions_labelled_minus_100_dropped():
    # Two sequences of 4 positions; logits favour the id in `predicted`.
    predicted = np.array([[0, 3, 4, 1], [1, 0, 2, 2]])
    logits = np.eye(len(NAMES))[predicted]
    labels = np.array([[X, 3, 4, X], [X, 1, X, X]])

    predictions, references = logits_to_tag_sequences(logits, labels, NAMES)

    assert predictions == [["B-PER", "I-PER"], ["O"]]
    assert references == [["B-PER", "I-PER"], ["B-LOC"]]


def test_predicted_ids_and_id2label_mappings_are_accepted():
    predictions, references = logits_to_tag_sequences(
        np.array([[1, 0]]), np.array([[1, X]]), dict(enumerate(NAMES))
    )

    assert (predictions, references) == ([["B-LOC"]], [["B-LOC"]])


def test_predictions_must_have_the_labels_shape():
    with pytest.raises(ValueError, match="do not match labels"):
        logits_to_tag_sequences(np.zeros((2, 3)), np.zeros((2, 4)), NAMES)


def test_compute_metrics_ignores_minus_100_positions_and_takes_logits_from_a_tuple():
    labels = np.array([[X, 3, 4, 0, 1, X, X]])
    predicted = np.array([[2, 3, 4, 0, 1, 2, 2]])  # wrong only where the label is -100
    logits = np.eye(len(NAMES))[predicted]
    hidden_states = np.zeros((1, 7, 8))

    compute_metrics = build_ner_compute_metrics(NAMES)
    scores = compute_metrics(EvalPrediction(predictions=(logits, hidden_states), label_ids=labels))

    assert (scores["precision"], scores["recall"], scores["f1"], scores["accuracy"]) == (1.0, 1.0, 1.0, 1.0)
    assert scores["PER_number"] == 1.0 and scores["LOC_number"] == 1.0


def test_compute_metrics_scores_a_miss():
    labels = np.array([[X, 3, 0, 1, X]])
    predicted = np.array([[0, 3, 0, 0, 0]])

    scores = build_ner_compute_metrics(NAMES)(EvalPrediction(predictions=predicted, label_ids=labels))

    assert (scores["precision"], scores["recall"]) == (1.0, 0.5)
