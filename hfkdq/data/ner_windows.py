"""Evaluate every word of a sentence longer than the model: windows instead of truncation.

Truncating an evaluation sentence silently drops the gold entities past the cut, which inflates
recall and precision alike. Instead each long sentence becomes several feature rows ("windows"),
each owning a run of consecutive words and carrying up to a quarter of its length of the preceding
words as left context (labelled -100, so the metric counts every word exactly once). Windows are cut
only where no gold entity continues, so seqeval sees every gold entity whole; an entity too long for
one window is the single exception, and it is counted and reported.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transformers import BatchEncoding, PreTrainedTokenizerBase

from hfkdq.data.conll import TAGS_COLUMN, TOKENS_COLUMN
from hfkdq.data.ner_features import IGNORE_INDEX, align_labels, b_to_i_ids, default_max_length, visible_words

logger = logging.getLogger(__name__)

CONTINUATION_PREFIXES = ("I-", "E-", "L-")
"""Tags that continue an entity (IOB2 I-, IOBES E-, BILOU L-): a window may not start at one."""


@dataclass(frozen=True)
class Window:
    context_start: int
    start: int
    end: int


def plan_windows(
    word_lengths: Sequence[int], continues_entity: Sequence[bool], budget: int, context_budget: int
) -> tuple[list[Window], int]:
    """Windows over one sentence, and how many gold entities had to be cut (too long for a window).

    ``word_lengths`` are subword counts (0 for words the tokenizer maps to nothing), ``budget`` the
    subwords a window may hold and ``context_budget`` how many of them may be left context.
    """
    windows: list[Window] = []
    cut_entities = 0
    start, count = 0, len(word_lengths)
    while start < count:
        context_start, context = start, 0
        while context_start > 0 and context + word_lengths[context_start - 1] <= context_budget:
            context_start -= 1
            context += word_lengths[context_start]
        if word_lengths[start] > budget - context:  # the first owned word must fit: drop the context
            context_start, context = start, 0
        room, end = budget - context, start
        while end < count and room - word_lengths[end] >= 0:
            room -= word_lengths[end]
            end += 1
        if end == start:  # one word longer than the window: alone, its first subwords kept
            end = start + 1
        if end < count:
            cut = end
            while cut > start + 1 and continues_entity[cut]:
                cut -= 1
            if continues_entity[cut]:
                cut_entities += 1  # no cut point outside the entity: it is split across windows
            else:
                end = cut
        windows.append(Window(context_start, start, end))
        start = end
    return windows, cut_entities


def window_and_align_labels(
    examples: dict[str, list[Any]],
    tokenizer: PreTrainedTokenizerBase,
    label_names: Sequence[str],
    label_all_tokens: bool = False,
    max_length: int | None = None,
    statistics: dict[str, int] | None = None,
) -> BatchEncoding:
    """Batched `Dataset.map` function for evaluation splits: one feature row per window.

    A sentence that fits is one row, identical to `tokenize_and_align_labels`. ``statistics``, when
    given, is updated with the number of sentences windowed and of entities that had to be split.
    """
    max_length = default_max_length(tokenizer) if max_length is None else max_length
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    if budget < 1:
        raise ValueError(f"max_seq_length {max_length} leaves no room for a word next to the special tokens")
    continuation = b_to_i_ids(label_names) if label_all_tokens else None
    continues = [str(name).startswith(CONTINUATION_PREFIXES) for name in label_names]
    words_out: list[list[str]] = []
    tags_out: list[list[int]] = []
    context_out: list[int] = []
    sentences = examples[TOKENS_COLUMN]
    pieces = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False)
    visible = visible_words(sentences, pieces, tokenizer)
    if visible is not None:
        sentences = visible
        pieces = tokenizer(sentences, is_split_into_words=True, add_special_tokens=False)
    for index, (words, tags) in enumerate(zip(sentences, examples[TAGS_COLUMN], strict=True)):
        lengths = [0] * len(words)
        for word in pieces.word_ids(index):
            if word is not None:
                lengths[word] += 1
        if sum(lengths) <= budget:
            words_out.append(words)
            tags_out.append(tags)
            context_out.append(0)
            continue
        windows, cut = plan_windows(lengths, [continues[tag] for tag in tags], budget, budget // 4)
        if statistics is not None:
            statistics["windowed_sentences"] = statistics.get("windowed_sentences", 0) + 1
            statistics["split_entities"] = statistics.get("split_entities", 0) + cut
        for window in windows:
            words_out.append(words[window.context_start : window.end])
            tags_out.append(tags[window.context_start : window.end])
            context_out.append(window.start - window.context_start)
    encoding = tokenizer(words_out, is_split_into_words=True, truncation=True, max_length=max_length)
    labels = []
    for row, (tags, context) in enumerate(zip(tags_out, context_out, strict=True)):
        word_ids = encoding.word_ids(row)
        aligned = align_labels(word_ids, tags, continuation)
        labels.append(
            [
                IGNORE_INDEX if word is not None and word < context else label
                for word, label in zip(word_ids, aligned, strict=True)
            ]
        )
    encoding["labels"] = labels
    return encoding
