"""Entity-level NER metrics (seqeval), computed offline, in the form Trainer's `compute_metrics` wants.

seqeval runs in its default mode, which reproduces the conlleval script that CoNLL-2003 results are
reported with: a predicted I-X after O or another type opens a new entity instead of being dropped, as
seqeval's strict IOB2 mode would do. Gold tags are IOB2 (the loaders guarantee it), so the mode only
decides how a model's ill-formed predictions are read, and conlleval's reading keeps our numbers
comparable with published ones and with Hugging Face's `run_ner` example.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
from transformers import EvalPrediction

IGNORE_INDEX = -100
"""Label id of positions that carry no word-level tag (special tokens, later subwords, padding)."""

TagSequences = list[list[str]]
LabelNames = Sequence[str] | Mapping[int, str]


def _check_aligned(predictions: TagSequences, references: TagSequences) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predicted sentences but {len(references)} reference sentences")
    for index, (predicted, reference) in enumerate(zip(predictions, references, strict=True)):
        if len(predicted) != len(reference):
            raise ValueError(
                f"sentence {index}: {len(predicted)} predicted tags but {len(reference)} reference tags; "
                "metrics compare tag by tag, so both must cover the same words"
            )
    if not references:
        raise ValueError("no sentences to score")


def ner_metrics(predictions: TagSequences, references: TagSequences) -> dict[str, float]:
    """Micro `precision`/`recall`/`f1` over entities, token `accuracy`, and `{TYPE}_precision/recall/f1/number`.

    The result is flat (no nested dicts) because Trainer logs `compute_metrics` output as scalars.
    A type with no predicted (or no gold) entity scores 0 rather than raising a warning.
    """
    _check_aligned(predictions, references)
    scores = {
        "precision": precision_score(references, predictions, zero_division=0),
        "recall": recall_score(references, predictions, zero_division=0),
        "f1": f1_score(references, predictions, zero_division=0),
        "accuracy": accuracy_score(references, predictions),
    }
    report = classification_report(references, predictions, output_dict=True, zero_division=0)
    for entity_type, row in report.items():
        if entity_type.endswith(" avg"):
            continue
        scores[f"{entity_type}_precision"] = row["precision"]
        scores[f"{entity_type}_recall"] = row["recall"]
        scores[f"{entity_type}_f1"] = row["f1-score"]
        scores[f"{entity_type}_number"] = row["support"]
    return {name: float(value) for name, value in scores.items()}


def ner_classification_report(predictions: TagSequences, references: TagSequences, digits: int = 4) -> str:
    """seqeval's per-type text report (same mode as `ner_metrics`), for logs and result files."""
    _check_aligned(predictions, references)
    return classification_report(references, predictions, digits=digits, zero_division=0)


def logits_to_tag_sequences(
    logits_or_predictions: np.ndarray, label_ids: np.ndarray, label_names: LabelNames
) -> tuple[TagSequences, TagSequences]:
    """Decode (batch, seq, labels) logits or (batch, seq) ids to tag strings, skipping label -100.

    Positions labelled -100 are not words (special tokens, later subwords, padding), so dropping them
    leaves one predicted and one gold tag per word, which is what entity-level scoring needs.
    """
    predicted_ids = np.asarray(logits_or_predictions)
    if predicted_ids.ndim == 3:
        predicted_ids = predicted_ids.argmax(axis=-1)
    label_ids = np.asarray(label_ids)
    if predicted_ids.shape != label_ids.shape:
        raise ValueError(
            f"predictions of shape {predicted_ids.shape} do not match labels of shape {label_ids.shape}"
        )
    predictions: TagSequences = []
    references: TagSequences = []
    for predicted_row, label_row in zip(predicted_ids, label_ids, strict=True):
        keep = label_row != IGNORE_INDEX
        predictions.append([label_names[int(index)] for index in predicted_row[keep]])
        references.append([label_names[int(index)] for index in label_row[keep]])
    return predictions, references


def build_ner_compute_metrics(label_names: LabelNames) -> Callable[[EvalPrediction], dict[str, float]]:
    """A Trainer `compute_metrics` that scores token-classification output with `ner_metrics`.

    Models may return extra outputs (hidden states, attentions), which Trainer passes as a tuple whose
    first element is the logits.
    """
    names = dict(label_names) if isinstance(label_names, Mapping) else list(label_names)

    def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
        predictions, label_ids = eval_prediction[0], eval_prediction[1]
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        return ner_metrics(*logits_to_tag_sequences(predictions, label_ids, names))

    return compute_metrics
