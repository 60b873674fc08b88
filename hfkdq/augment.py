"""Augmented training views that the teacher and the student both see ("patient and consistent" KD).

Beyer et al. (CVPR 2022) find that distillation pays when the student matches the teacher's function
on the same augmented views, drawn afresh every epoch, rather than on the fixed training set. The
teacher runs live on each batch, so it always sees the view the student sees.

Views are made at the word level, before tokenization, so NER tags stay aligned with their words:

- NER (every augmentation keeps the gold tags valid, so cross-entropy still applies):
  ``mask_o`` masks ``O`` words, ``replace_o`` swaps ``O`` words for other ``O`` words of the training
  set, ``replace_mentions`` swaps an entity mention for another training mention of the same type,
  ``shuffle_segments`` shuffles the order of mention and ``O`` segments (Dai & Adel, 2020).
- GLUE (Tang et al., 2019): ``mask_words`` masks words, ``ngram`` keeps a random n-gram of a single
  sentence. Either can change the meaning, so such a view is trained on the teacher's output only:
  its label becomes -100 and the cross-entropy term skips it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hfkdq.data.conll import TAGS_COLUMN, TOKENS_COLUMN

LABEL_IS_GOLD = "label_is_gold"
"""Feature of sequence-task views: 0 where the augmentation may have changed the label."""


@dataclass
class AugmentationContext:
    """What the augmentations draw from, collected once from the training set."""

    mask_token: str
    rate: float = 0.15
    """Probability that one word is masked or replaced."""
    label_names: Sequence[str] = ()
    mentions_by_type: dict[str, list[list[str]]] = field(default_factory=dict)
    o_words: list[str] = field(default_factory=list)
    text_columns: Sequence[str] = ()


def _segments(tags: Sequence[str]) -> list[tuple[int, int, str | None]]:
    """(start, end, entity type or None for O) runs: each mention is one segment, each O run another."""
    segments: list[tuple[int, int, str | None]] = []
    for index, tag in enumerate(tags):
        kind = None if tag == "O" else tag[2:]
        starts_mention = tag.startswith("B-") or (
            kind is not None and (not segments or segments[-1][2] != kind)
        )
        if segments and not starts_mention and segments[-1][2] == kind:
            start, _, _ = segments[-1]
            segments[-1] = (start, index + 1, kind)
        else:
            segments.append((index, index + 1, kind))
    return segments


def _mention_tags(kind: str, length: int) -> list[str]:
    return [f"B-{kind}"] + [f"I-{kind}"] * (length - 1)


def _with_tags(example: dict, tokens: list[str], tags: list[str], context: AugmentationContext) -> dict:
    ids = {name: index for index, name in enumerate(context.label_names)}
    return {**example, TOKENS_COLUMN: tokens, TAGS_COLUMN: [ids[tag] for tag in tags]}


def _names(example: dict, context: AugmentationContext) -> list[str]:
    return [context.label_names[tag] for tag in example[TAGS_COLUMN]]


def mask_o(example: dict, context: AugmentationContext, rng: np.random.Generator) -> dict:
    """Mask ``O`` words: the model must find entities from their context and their own form."""
    tags = _names(example, context)
    tokens = [
        context.mask_token if tag == "O" and rng.random() < context.rate else token
        for token, tag in zip(example[TOKENS_COLUMN], tags, strict=True)
    ]
    return _with_tags(example, tokens, tags, context)


def replace_o(example: dict, context: AugmentationContext, rng: np.random.Generator) -> dict:
    """Swap ``O`` words for other ``O`` words of the training set."""
    if not context.o_words:
        return example
    tags = _names(example, context)
    tokens = [
        context.o_words[rng.integers(len(context.o_words))]
        if tag == "O" and rng.random() < context.rate
        else token
        for token, tag in zip(example[TOKENS_COLUMN], tags, strict=True)
    ]
    return _with_tags(example, tokens, tags, context)


def replace_mentions(example: dict, context: AugmentationContext, rng: np.random.Generator) -> dict:
    """Swap each mention, with probability one half, for a training mention of the same type."""
    tags = _names(example, context)
    tokens_out: list[str] = []
    tags_out: list[str] = []
    for start, end, kind in _segments(tags):
        words = list(example[TOKENS_COLUMN][start:end])
        pool = context.mentions_by_type.get(kind or "", [])
        if kind is not None and pool and rng.random() < 0.5:
            words = list(pool[rng.integers(len(pool))])
            tags_out += _mention_tags(kind, len(words))
        else:
            tags_out += tags[start:end]
        tokens_out += words
    return _with_tags(example, tokens_out, tags_out, context)


def shuffle_segments(example: dict, context: AugmentationContext, rng: np.random.Generator) -> dict:
    """Shuffle the order of the mention and ``O`` segments; each keeps its words and tags."""
    tags = _names(example, context)
    segments = _segments(tags)
    order = rng.permutation(len(segments))
    tokens_out: list[str] = []
    tags_out: list[str] = []
    for position in order:
        start, end, _ = segments[position]
        tokens_out += example[TOKENS_COLUMN][start:end]
        tags_out += tags[start:end]
    return _with_tags(example, tokens_out, tags_out, context)


def mask_words(example: dict, context: AugmentationContext, rng: np.random.Generator) -> dict:
    """Mask words of every text column (Tang et al., 2019)."""
    masked = dict(example)
    for column in context.text_columns:
        words = str(example[column]).split()
        masked[column] = " ".join(
            context.mask_token if rng.random() < context.rate else word for word in words
        )
    return masked


def ngram(example: dict, context: AugmentationContext, rng: np.random.Generator) -> dict:
    """Keep a random n-gram (n from 1 to 5) of a single sentence (Tang et al., 2019); pairs are masked instead."""
    if len(context.text_columns) != 1:
        return mask_words(example, context, rng)
    column = context.text_columns[0]
    words = str(example[column]).split()
    if len(words) <= 1:
        return example
    length = int(rng.integers(1, min(5, len(words)) + 1))
    start = int(rng.integers(0, len(words) - length + 1))
    return {**example, column: " ".join(words[start : start + length])}


@dataclass(frozen=True)
class Augmentation:
    name: str
    function: Callable[[dict, AugmentationContext, np.random.Generator], dict]
    keeps_gold: bool
    """Whether the gold label still holds for the view (else it trains on the teacher's output only)."""
    head: str
    """'token' (NER) or 'sequence' (GLUE)."""


AUGMENTATIONS: dict[str, Augmentation] = {
    augmentation.name: augmentation
    for augmentation in (
        Augmentation("mask_o", mask_o, True, "token"),
        Augmentation("replace_o", replace_o, True, "token"),
        Augmentation("replace_mentions", replace_mentions, True, "token"),
        Augmentation("shuffle_segments", shuffle_segments, True, "token"),
        Augmentation("mask_words", mask_words, False, "sequence"),
        Augmentation("ngram", ngram, False, "sequence"),
    )
}


def parse_augmentations(spec: str, head: str) -> list[Augmentation]:
    """'all' (every augmentation for the head) or a comma-separated list of names."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if names == ["all"]:
        return [augmentation for augmentation in AUGMENTATIONS.values() if augmentation.head == head]
    chosen = []
    for name in names:
        if name not in AUGMENTATIONS:
            raise ValueError(
                f"unknown augmentation {name!r}: use 'all' or some of {', '.join(AUGMENTATIONS)}"
            )
        if AUGMENTATIONS[name].head != head:
            fitting = [a.name for a in AUGMENTATIONS.values() if a.head == head]
            raise ValueError(
                f"augmentation {name!r} does not fit a {head}-classification task; use {fitting}"
            )
        chosen.append(AUGMENTATIONS[name])
    if not chosen:
        raise ValueError("--augment names no augmentation; use 'all' or a comma-separated list")
    return chosen


def ner_context(raw_train, mask_token: str, rate: float) -> AugmentationContext:
    """The mention pool by type and the ``O`` vocabulary of an NER training set."""
    label_names = raw_train.features[TAGS_COLUMN].feature.names
    mentions: dict[str, list[list[str]]] = {}
    o_words: set[str] = set()
    for row in raw_train:
        tags = [label_names[tag] for tag in row[TAGS_COLUMN]]
        for start, end, kind in _segments(tags):
            words = row[TOKENS_COLUMN][start:end]
            if kind is None:
                o_words.update(words)
            else:
                mentions.setdefault(kind, []).append(list(words))
    return AugmentationContext(
        mask_token=mask_token,
        rate=rate,
        label_names=label_names,
        mentions_by_type=mentions,
        o_words=sorted(o_words),
    )


class AugmentedTrainingSet(torch.utils.data.Dataset):
    """The training set, where each item is, with probability ``probability``, a fresh augmented view.

    Views are drawn per (seed, example, draw) so a run is reproducible; tokenization happens per item
    through the task's own ``featurize``, so the features match the un-augmented ones exactly.
    """

    def __init__(
        self,
        raw_train,
        featurize: Callable[[dict[str, list]], dict[str, list]],
        augmentations: Sequence[Augmentation],
        context: AugmentationContext,
        probability: float = 0.5,
        seed: int = 0,
    ):
        if not 0 < probability <= 1:
            raise ValueError(f"augment_probability must be in (0, 1], got {probability}")
        self.raw_train = raw_train
        self.featurize = featurize
        self.augmentations = list(augmentations)
        self.context = context
        self.probability = probability
        self.seed = seed
        self._draws = np.zeros(len(raw_train), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.raw_train)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, index, int(self._draws[index])])
        self._draws[index] += 1
        example = dict(self.raw_train[index])
        keeps_gold = True
        if rng.random() < self.probability:
            augmentation = self.augmentations[int(rng.integers(len(self.augmentations)))]
            example = augmentation.function(example, self.context, rng)
            keeps_gold = augmentation.keeps_gold
        batch = self.featurize({key: [value] for key, value in example.items()})
        features = {key: values[0] for key, values in batch.items()}
        if self.augmentations[0].head == "sequence":
            features[LABEL_IS_GOLD] = int(keeps_gold)
        return features


def augmented_training_set(
    task, tokenizer, spec: str, probability: float = 0.5, rate: float = 0.15, seed: int = 0
) -> AugmentedTrainingSet:
    """The task's training set with fresh views of the augmentations named in ``spec``."""
    augmentations = parse_augmentations(spec, task.head)
    if task.raw_train is None or task.featurize is None:
        raise ValueError("--augment needs the task's raw training examples; this task does not keep them")
    if not 0 < rate <= 1:
        raise ValueError(f"augment_rate must be in (0, 1], got {rate}")
    mask_token = tokenizer.mask_token or tokenizer.unk_token
    if task.head == "token":
        context = ner_context(task.raw_train, mask_token, rate)
    else:
        context = AugmentationContext(mask_token=mask_token, rate=rate, text_columns=task.text_columns)
    return AugmentedTrainingSet(task.raw_train, task.featurize, augmentations, context, probability, seed)
