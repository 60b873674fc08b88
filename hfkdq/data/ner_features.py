"""Word-level NER examples -> subword features whose labels line up with the tokens.

A WordPiece tokenizer splits one word into several tokens while the tags belong to words, so each
token needs a label that says which word it stands for, and -100 where the loss and the metrics
must ignore it (special tokens, and non-first subwords unless every subword is labelled). This is
the bottom of the NER data stack: `hfkdq.data.ner_windows` builds evaluation windows on it and
`hfkdq.data.ner` prepares whole splits with both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import BatchEncoding, PreTrainedTokenizerBase

from hfkdq.data.conll import TAGS_COLUMN, TOKENS_COLUMN
from hfkdq.heads import IGNORE_INDEX as IGNORE_INDEX  # re-exported: the NER feature code's label skip

MAX_LENGTH_CAP = 512
"""BERT-style encoders have 512 position embeddings; tokenizers may report a far larger limit."""


def default_max_length(tokenizer: PreTrainedTokenizerBase) -> int:
    """The longest sequence the encoder can take: the tokenizer's limit, capped at 512."""
    return min(int(tokenizer.model_max_length), MAX_LENGTH_CAP)


def b_to_i_ids(label_names: Sequence[str]) -> list[int]:
    """For each label id, the id to give a non-first subword: B-X becomes I-X, every other label stays.

    A word's continuation pieces are inside the entity, never its start, so labelling them B-X would
    make seqeval count one entity per subword.
    """
    ids = {name: index for index, name in enumerate(label_names)}
    return [
        ids.get("I-" + name[2:], index) if name.startswith("B-") else index
        for index, name in enumerate(label_names)
    ]


def require_fast(tokenizer: PreTrainedTokenizerBase) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"{type(tokenizer).__name__} is a slow tokenizer; label alignment needs word_ids(), which only "
            "fast (Rust) tokenizers provide: load it with AutoTokenizer.from_pretrained(..., use_fast=True)"
        )


def visible_words(
    sentences: list[list[str]],
    encoding: BatchEncoding,
    tokenizer: PreTrainedTokenizerBase,
    truncated_at: int | None = None,
) -> list[list[str]] | None:
    """The sentences with every word that got no token in `encoding` (a zero-width or control
    character, say) replaced by the unknown token; None when there is none, the usual case.

    Such a word would get no position, so its tag, possibly the B- of an entity, would vanish from
    the gold: every word must keep exactly one scored position. Words past a truncation
    (`truncated_at` tokens) are cut anyway and left alone. Reading the encoding already made keeps
    the common case free of a second tokenization.
    """
    changed = False
    result = []
    for index, words in enumerate(sentences):
        seen = {word for word in encoding.word_ids(index) if word is not None}
        if len(seen) == len(words):
            result.append(words)
            continue
        cut = truncated_at is not None and len(encoding["input_ids"][index]) >= truncated_at
        last = max(seen, default=-1)
        empty = {
            position
            for position in range(len(words))
            if position not in seen and (position < last or not cut)
        }
        changed = changed or bool(empty)
        unknown = tokenizer.unk_token or "[UNK]"
        result.append([unknown if position in empty else word for position, word in enumerate(words)])
    return result if changed else None


def align_labels(
    word_ids: list[int | None], tags: Sequence[int], continuation: list[int] | None
) -> list[int]:
    """Labels for one sequence: -100 on special tokens; `continuation` (B->I ids) or -100 on later subwords."""
    labels: list[int] = []
    previous: int | None = None
    for word in word_ids:
        if word is None:
            labels.append(IGNORE_INDEX)
        elif word != previous:
            labels.append(tags[word])
        else:
            labels.append(IGNORE_INDEX if continuation is None else continuation[tags[word]])
        previous = word
    return labels


def tokenize_and_align_labels(
    examples: dict[str, list[Any]],
    tokenizer: PreTrainedTokenizerBase,
    label_all_tokens: bool = False,
    max_length: int | None = None,
    label_names: Sequence[str] | None = None,
) -> BatchEncoding:
    """Batched `Dataset.map` function: tokenize pre-split words and attach per-token `labels`.

    First-subword mode (default) labels only a word's first token, as in BERT's CoNLL-2003 setup, so
    metrics count each word once. `label_all_tokens=True` labels every subword, B-X turned into I-X for
    continuations, which needs `label_names`. Sequences are truncated to `max_length` (default
    `min(tokenizer.model_max_length, 512)`); words cut off get no label. Padding is left to the collator.
    """
    require_fast(tokenizer)
    if label_all_tokens and label_names is None:
        raise ValueError("label_all_tokens=True needs label_names, to map each B-X continuation to I-X")
    continuation = b_to_i_ids(label_names) if label_all_tokens else None
    length = default_max_length(tokenizer) if max_length is None else max_length
    sentences = examples[TOKENS_COLUMN]
    encoding = tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=length)
    visible = visible_words(sentences, encoding, tokenizer, truncated_at=length)
    if visible is not None:
        encoding = tokenizer(visible, is_split_into_words=True, truncation=True, max_length=length)
    encoding["labels"] = [
        align_labels(encoding.word_ids(index), tags, continuation)
        for index, tags in enumerate(examples[TAGS_COLUMN])
    ]
    return encoding
