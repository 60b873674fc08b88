"""Entity-level NER metrics (seqeval), computed offline, in the form Trainer's `compute_metrics` wants.

seqeval runs in its default mode, which reproduces the conlleval script that CoNLL-2003 results are
reported with: a predicted I-X after O or another type opens a new entity instead of being dropped, as
seqeval's strict IOB2 mode would do. Gold tags are IOB2 (the loaders guarantee it), so the mode only
decides how a model's ill-formed predictions are read, and conlleval's reading keeps our numbers
comparable with published ones and with Hugging Face's `run_ner` example.

`Seqeval` publishes the scores as an `evaluate` metric module with the Hub `seqeval` metric's inputs and
output (`overall_precision`, ..., one dict per entity type), so code written against
the Hub seqeval metric runs unchanged offline; this file is also a valid `evaluate.load` script
path. `ner_metrics` and `build_ner_compute_metrics` flatten that same output the way `run_ner` does,
so every caller shares one code path (`seqeval_scores`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import datasets
import evaluate
import numpy as np
from seqeval.metrics import accuracy_score, classification_report
from transformers import EvalPrediction

from hfkdq.heads import IGNORE_INDEX

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


def seqeval_scores(
    predictions: TagSequences,
    references: TagSequences,
    *,
    suffix: bool = False,
    scheme: str | None = None,
    mode: str | None = None,
) -> dict[str, Any]:
    """Entity-level scores in the Hub `seqeval` metric's shape: one dict per entity type, then `overall_*`.

    Each type maps to its `precision`, `recall`, `f1` (floats) and `number` (gold entities, an int);
    `overall_precision/recall/f1` are the micro averages over entities and `overall_accuracy` is token
    accuracy. `suffix`, `scheme` (a `seqeval.scheme` class name such as "IOB2") and `mode` ("strict")
    are seqeval's options, as the Hub metric takes them; the defaults give conlleval's reading.
    A type with no predicted (or no gold) entity scores 0 rather than raising a warning.
    """
    _check_aligned(predictions, references)
    scheme_class = getattr(importlib.import_module("seqeval.scheme"), scheme) if scheme else None
    report = classification_report(
        references,
        predictions,
        suffix=suffix,
        scheme=scheme_class,
        mode=mode,
        output_dict=True,
        zero_division=0,
    )
    overall = report.pop("micro avg")
    scores: dict[str, Any] = {
        entity_type: {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "number": int(row["support"]),
        }
        for entity_type, row in report.items()
        if not entity_type.endswith(" avg")
    }
    scores["overall_precision"] = float(overall["precision"])
    scores["overall_recall"] = float(overall["recall"])
    scores["overall_f1"] = float(overall["f1-score"])
    scores["overall_accuracy"] = float(accuracy_score(references, predictions))
    return scores


def flatten_seqeval_scores(scores: Mapping[str, Any]) -> dict[str, float]:
    """`precision`/`recall`/`f1`/`accuracy` and `{TYPE}_precision/recall/f1/number`, all floats.

    Trainer logs `compute_metrics` output as scalars, so the nested Hub shape is flattened with
    `run_ner`'s names (overall scores without their prefix, per-type ones joined with "_").
    """
    flat = {name: float(scores[f"overall_{name}"]) for name in ("precision", "recall", "f1", "accuracy")}
    for entity_type, row in scores.items():
        if isinstance(row, Mapping):
            flat.update({f"{entity_type}_{name}": float(value) for name, value in row.items()})
    return flat


def ner_metrics(predictions: TagSequences, references: TagSequences) -> dict[str, float]:
    """Micro `precision`/`recall`/`f1` over entities, token `accuracy`, and `{TYPE}_precision/recall/f1/number`.

    The result is flat (no nested dicts) because Trainer logs `compute_metrics` output as scalars.
    A type with no predicted (or no gold) entity scores 0 rather than raising a warning.
    """
    return flatten_seqeval_scores(seqeval_scores(predictions, references))


class Seqeval(evaluate.Metric):
    """Entity-level NER scores as an offline `evaluate` module, a drop-in for the Hub's `seqeval` metric.

    The Hub seqeval metric fetches its script from the Hub at run time; this module needs no
    network and returns the Hub metric's keys, computed by `seqeval_scores`. Unlike the Hub metric,
    a zero division scores 0 by default instead of warning, as everywhere in this toolkit.
    """

    def _info(self) -> evaluate.MetricInfo:
        tags = datasets.Sequence(datasets.Value("string", id="label"), id="sequence")
        return evaluate.MetricInfo(
            description="Entity-level precision, recall and F1 (seqeval, conlleval reading), computed offline.",
            citation=_SEQEVAL_CITATION,
            inputs_description=_SEQEVAL_INPUTS,
            features=datasets.Features({"predictions": tags, "references": tags}),
            homepage="https://github.com/chakki-works/seqeval",
            reference_urls=["https://huggingface.co/spaces/evaluate-metric/seqeval"],
        )

    def _compute(self, predictions: TagSequences, references: TagSequences, **options: Any) -> dict[str, Any]:
        """`options` are `seqeval_scores`' keyword arguments (suffix, scheme, mode), given to `compute`."""
        return seqeval_scores(predictions, references, **options)


_SEQEVAL_CITATION = """@misc{seqeval,
  title={{seqeval}: A Python framework for sequence labeling evaluation},
  url={https://github.com/chakki-works/seqeval},
  author={Hiroki Nakayama},
  year={2018}
}"""

_SEQEVAL_INPUTS = """
Args:
    predictions: one list of tags (e.g. "B-PER") per sentence.
    references: the gold tags, one per predicted tag.
    suffix, scheme, mode: seqeval's options (compute only); the defaults read tags as conlleval does.
Returns:
    One dict per entity type (precision, recall, f1, number) and overall_precision, overall_recall,
    overall_f1, overall_accuracy.
"""


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
    """A Trainer `compute_metrics` that scores token-classification output through `Seqeval`, flattened.

    Models may return extra outputs (hidden states, attentions), which Trainer passes as a tuple whose
    first element is the logits. A fresh in-memory module per call writes no cache files and keeps no
    state from an evaluation that raised.
    """
    names = dict(label_names) if isinstance(label_names, Mapping) else list(label_names)

    def compute_metrics(eval_prediction: EvalPrediction) -> dict[str, float]:
        predictions, label_ids = eval_prediction[0], eval_prediction[1]
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        tag_predictions, tag_references = logits_to_tag_sequences(predictions, label_ids, names)
        metric = Seqeval(keep_in_memory=True)
        return flatten_seqeval_scores(metric.compute(predictions=tag_predictions, references=tag_references))

    return compute_metrics
