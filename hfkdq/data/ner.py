"""NER splits -> features: the training split truncated, evaluation splits windowed, and the collator.

The word-to-token feature building lives in `hfkdq.data.ner_features` and the evaluation windows in
`hfkdq.data.ner_windows`, which builds on it; this module sits above both, so neither imports it.
"""

from __future__ import annotations

import logging
from functools import partial

import datasets
from transformers import DataCollatorForTokenClassification, PreTrainedTokenizerBase

from hfkdq.data.conll import label_names_of

# Re-exported (`x as x`) for code that imports the feature builders from here, as before the split.
from hfkdq.data.ner_features import IGNORE_INDEX as IGNORE_INDEX
from hfkdq.data.ner_features import b_to_i_ids as b_to_i_ids
from hfkdq.data.ner_features import default_max_length, require_fast
from hfkdq.data.ner_features import tokenize_and_align_labels as tokenize_and_align_labels
from hfkdq.data.ner_windows import window_and_align_labels

logger = logging.getLogger(__name__)


def prepare_ner_features(
    dataset: datasets.DatasetDict | datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    label_all_tokens: bool = False,
    max_length: int | None = None,
) -> datasets.DatasetDict | datasets.Dataset:
    """Tokenize every split, keeping only model inputs and `labels` (the word columns are dropped)."""
    require_fast(tokenizer)
    columns = dataset.column_names
    if isinstance(columns, dict):
        columns = next(iter(columns.values()), [])
    label_names = label_names_of(dataset)
    align = partial(
        tokenize_and_align_labels,
        tokenizer=tokenizer,
        label_all_tokens=label_all_tokens,
        max_length=max_length,
        label_names=label_names,
    )
    if not isinstance(dataset, datasets.DatasetDict):
        return dataset.map(
            align, batched=True, remove_columns=columns, desc="Tokenizing and aligning NER labels"
        )
    features = {}
    for split, data in dataset.items():
        if split == "train":
            features[split] = data.map(
                align, batched=True, remove_columns=columns, desc="Tokenizing and aligning NER labels"
            )
            continue
        # Evaluation splits are never truncated: a long sentence is scored whole, in windows.
        statistics: dict[str, int] = {}
        windowed = partial(
            window_and_align_labels,
            tokenizer=tokenizer,
            label_names=label_names,
            label_all_tokens=label_all_tokens,
            max_length=max_length,
            statistics=statistics,
        )
        features[split] = data.map(
            windowed,
            batched=True,
            remove_columns=columns,
            load_from_cache_file=False,  # the statistics below come from running it
            desc=f"Tokenizing and aligning NER labels ({split})",
        )
        if statistics.get("windowed_sentences"):
            logger.warning(
                "%d of %d %s sentences are longer than max_seq_length %s: each is evaluated whole, in %d "
                "overlapping windows in all, so no gold entity is dropped%s.",
                statistics["windowed_sentences"],
                len(data),
                split,
                max_length if max_length is not None else default_max_length(tokenizer),
                len(features[split]) - len(data) + statistics["windowed_sentences"],
                f"; {statistics['split_entities']} entities longer than a window are split in two"
                if statistics.get("split_entities")
                else "",
            )
    return datasets.DatasetDict(features)


def ner_data_collator(
    tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None = None
) -> DataCollatorForTokenClassification:
    """Pads inputs with the tokenizer and labels with -100, so padding never counts in loss or metrics."""
    return DataCollatorForTokenClassification(
        tokenizer, pad_to_multiple_of=pad_to_multiple_of, label_pad_token_id=IGNORE_INDEX
    )
