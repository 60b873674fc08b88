"""Evaluation never changes the gold: a sentence longer than the model is scored whole, in windows."""

from __future__ import annotations

import logging
import random

import datasets
import numpy as np
from seqeval.metrics.sequence_labeling import get_entities
from transformers import EvalPrediction

from hfkdq.data.ner import prepare_ner_features
from hfkdq.data.ner_features import IGNORE_INDEX, tokenize_and_align_labels
from hfkdq.data.ner_windows import plan_windows
from hfkdq.metrics.ner import build_ner_compute_metrics

NAMES = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
VOCAB = ["paris", "anna", "walked", "to", "the", "river", "unaffable", "montpellier", ",", "."]


def _long_sentence(length: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """Random words with entities of 1-4 words everywhere, window boundaries included."""
    rng = random.Random(seed)
    words, tags = [], []
    while len(words) < length:
        if rng.random() < 0.3:
            kind = rng.choice([1, 3])  # B-LOC or B-PER
            span = rng.randint(1, 4)
            tags += [kind] + [kind + 1] * (span - 1)
            words += [rng.choice(VOCAB) for _ in range(span)]
        else:
            tags.append(0)
            words.append(rng.choice(VOCAB))
    return words[:length], tags[:length]


def _split(words, tags, extra=()):
    rows = [(words, tags), *extra]
    data = datasets.Dataset.from_dict(
        {"tokens": [r[0] for r in rows], "ner_tags": [r[1] for r in rows]},
        features=datasets.Features(
            {
                "tokens": datasets.Sequence(datasets.Value("string")),
                "ner_tags": datasets.Sequence(datasets.ClassLabel(names=NAMES)),
            }
        ),
    )
    return datasets.DatasetDict({"validation": data})


def _perfect_metrics(features, split="validation"):
    """Score predictions equal to the gold: what the metric counts is then exactly the gold it sees."""
    width = max(len(row) for row in features[split]["labels"])
    labels = np.full((len(features[split]), width), IGNORE_INDEX)
    for index, row in enumerate(features[split]["labels"]):
        labels[index, : len(row)] = row
    logits = np.eye(len(NAMES))[np.where(labels < 0, 0, labels)]
    return build_ner_compute_metrics(NAMES)(EvalPrediction(predictions=logits, label_ids=labels))


def test_a_5000_word_sentence_is_scored_whole_with_every_gold_entity(minilm_tokenizer, caplog):
    words, tags = _long_sentence(5000)
    gold = get_entities([NAMES[t] for t in tags])

    with caplog.at_level(logging.WARNING):
        features = prepare_ner_features(_split(words, tags), minilm_tokenizer, max_length=64)

    rows = features["validation"]
    assert len(rows) > 5000 // 62  # windows, not one truncated row
    assert all(len(ids) <= 64 for ids in rows["input_ids"])
    scored = [label for row in rows["labels"] for label in row if label != IGNORE_INDEX]
    assert scored == tags  # every word once, in order, with its own tag
    metrics = _perfect_metrics(features)
    counted = sum(value for key, value in metrics.items() if key.endswith("_number"))
    assert counted == len(gold)
    assert metrics["f1"] == 1.0
    assert "1 of 1 validation sentences are longer than max_seq_length 64" in caplog.text


def test_truncation_would_have_dropped_those_entities(minilm_tokenizer):
    """The bug this replaces: the old path counts only the gold inside the first 64 tokens."""
    words, tags = _long_sentence(5000)
    truncated = tokenize_and_align_labels(
        {"tokens": [words], "ner_tags": [tags]}, minilm_tokenizer, max_length=64
    )
    kept = [label for label in truncated["labels"][0] if label != IGNORE_INDEX]
    assert len(kept) < len(tags) / 50


def test_short_sentences_are_featurized_exactly_as_before(minilm_tokenizer):
    short = (["Anna", "walked", "to", "Paris", "."], [3, 0, 0, 1, 0])
    features = prepare_ner_features(_split(*short, extra=[(["Paris"], [1])]), minilm_tokenizer)
    reference = tokenize_and_align_labels(
        {"tokens": [short[0], ["Paris"]], "ner_tags": [short[1], [1]]}, minilm_tokenizer
    )
    assert features["validation"]["input_ids"] == reference["input_ids"]
    assert features["validation"]["labels"] == reference["labels"]


def test_windows_are_cut_outside_entities_and_carry_left_context():
    lengths = [1] * 10
    #            0      1     2     3     4     5      6      7      8     9
    continues = [False, False, False, True, True, False, False, True, False, False]
    windows, split_entities = plan_windows(lengths, continues, budget=5, context_budget=1)
    owned = [index for w in windows for index in range(w.start, w.end)]
    assert owned == list(range(10))
    assert all(not continues[w.start] for w in windows)
    assert all(w.context_start == w.start - 1 for w in windows[1:])
    assert split_entities == 0


def test_an_entity_longer_than_a_window_is_counted_as_split():
    windows, split_entities = plan_windows([1] * 8, [False] + [True] * 7, budget=3, context_budget=0)
    assert [index for w in windows for index in range(w.start, w.end)] == list(range(8))
    assert split_entities >= 1


def test_a_word_longer_than_the_window_keeps_its_first_subword():
    windows, _ = plan_windows([2, 50, 1], [False, False, False], budget=10, context_budget=2)
    assert [(w.start, w.end) for w in windows] == [(0, 1), (1, 2), (2, 3)]
    assert windows[1].context_start == 1  # no context before the over-long word
