"""Word tags onto WordPiece tokens: one label per word (or per subword), -100 wherever nothing is scored."""

from __future__ import annotations

import datasets
import pytest
from transformers import BertTokenizer

from hfkdq.data.conll import load_ner_dataset
from hfkdq.data.ner import ner_data_collator, prepare_ner_features
from hfkdq.data.ner_features import IGNORE_INDEX, b_to_i_ids, default_max_length, tokenize_and_align_labels
from hfkdq.resources import btc_files, packaged_minilm_path

X = IGNORE_INDEX
NAMES = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
OUT, B_LOC, I_LOC, B_PER, I_PER = range(5)
WORDS = ["Jean-Claude", "Dupont", "found", "unaffable", "Montpellier", "."]
TAGS = [B_PER, I_PER, OUT, OUT, B_LOC, OUT]
# [CLS] jean - claude | dupont | found | una ##ffa ##ble | montpellier | . [SEP]
TOKENS = [
    "[CLS]",
    "jean",
    "-",
    "claude",
    "dupont",
    "found",
    "una",
    "##ffa",
    "##ble",
    "montpellier",
    ".",
    "[SEP]",
]


def align(tokenizer, **kwargs):
    return tokenize_and_align_labels({"tokens": [WORDS], "ner_tags": [TAGS]}, tokenizer, **kwargs)


def test_premise_the_sentence_has_words_split_into_several_wordpieces(minilm_tokenizer):
    assert align(minilm_tokenizer).tokens(0) == TOKENS


def test_first_subword_mode_labels_each_word_once(minilm_tokenizer):
    assert align(minilm_tokenizer)["labels"] == [[X, B_PER, X, X, I_PER, OUT, OUT, X, X, B_LOC, OUT, X]]


def test_all_subword_mode_labels_continuations_inside_the_entity(minilm_tokenizer):
    encoding = align(minilm_tokenizer, label_all_tokens=True, label_names=NAMES)

    assert encoding["labels"] == [[X, B_PER, I_PER, I_PER, I_PER, OUT, OUT, OUT, OUT, B_LOC, OUT, X]]


def test_all_subword_mode_needs_label_names_to_turn_b_into_i(minilm_tokenizer):
    with pytest.raises(ValueError, match="needs label_names"):
        align(minilm_tokenizer, label_all_tokens=True)


def test_labels_and_input_ids_have_equal_length_and_are_not_padded(minilm_tokenizer):
    batch = {"tokens": [WORDS, ["Paris"]], "ner_tags": [TAGS, [B_LOC]]}

    encoding = tokenize_and_align_labels(batch, minilm_tokenizer)

    assert (
        [len(ids) for ids in encoding["input_ids"]]
        == [len(labels) for labels in encoding["labels"]]
        == [12, 3]
    )


def test_truncation_keeps_max_length_and_drops_labels_of_cut_words(minilm_tokenizer):
    encoding = align(minilm_tokenizer, max_length=6)

    assert encoding.tokens(0) == ["[CLS]", "jean", "-", "claude", "dupont", "[SEP]"]
    assert encoding["labels"] == [[X, B_PER, X, X, I_PER, X]]


def test_default_max_length_is_the_model_limit_capped_at_512(minilm_tokenizer):
    long_sentence = {"tokens": [["word"] * 600], "ner_tags": [[OUT] * 600]}

    encoding = tokenize_and_align_labels(long_sentence, minilm_tokenizer)

    assert default_max_length(minilm_tokenizer) == 512
    assert len(encoding["input_ids"][0]) == len(encoding["labels"][0]) == 512
    assert encoding["labels"][0].count(OUT) == 510


@pytest.mark.skipif(
    BertTokenizer(str(packaged_minilm_path() / "vocab.txt")).is_fast,
    reason="this transformers (5.x) has no slow BERT tokenizer: every BertTokenizer is Rust-backed",
)
def test_slow_tokenizer_is_refused_with_the_fix():
    slow = BertTokenizer(str(packaged_minilm_path() / "vocab.txt"))

    with pytest.raises(TypeError, match="use_fast=True"):
        tokenize_and_align_labels({"tokens": [WORDS], "ner_tags": [TAGS]}, slow)


def test_b_to_i_maps_only_b_labels_that_have_an_i_partner():
    assert b_to_i_ids(NAMES) == [OUT, I_LOC, I_LOC, I_PER, I_PER]
    assert b_to_i_ids(["O", "B-X"]) == [0, 1]


def small_ner_dataset() -> datasets.DatasetDict:
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=NAMES)),
        }
    )
    split = datasets.Dataset.from_dict(
        {"tokens": [WORDS, ["Paris"]], "ner_tags": [TAGS, [B_LOC]]}, features=features
    )
    return datasets.DatasetDict({"train": split, "test": split.select([1])})


def test_prepared_features_keep_only_model_inputs_and_labels(minilm_tokenizer):
    prepared = prepare_ner_features(small_ner_dataset(), minilm_tokenizer)

    assert {split: len(data) for split, data in prepared.items()} == {"train": 2, "test": 1}
    assert sorted(prepared["train"].column_names) == [
        "attention_mask",
        "input_ids",
        "labels",
        "token_type_ids",
    ]
    assert prepared["test"]["labels"] == [[X, B_LOC, X]]


def test_prepared_features_read_label_names_from_the_dataset_for_all_subword_mode(minilm_tokenizer):
    prepared = prepare_ner_features(small_ner_dataset(), minilm_tokenizer, label_all_tokens=True)

    assert prepared["train"]["labels"][0] == [
        X,
        B_PER,
        I_PER,
        I_PER,
        I_PER,
        OUT,
        OUT,
        OUT,
        OUT,
        B_LOC,
        OUT,
        X,
    ]


def test_collator_pads_labels_with_minus_100(minilm_tokenizer):
    prepared = prepare_ner_features(small_ner_dataset(), minilm_tokenizer)["train"]

    batch = ner_data_collator(minilm_tokenizer)([prepared[0], prepared[1]])

    assert batch["input_ids"].shape == batch["labels"].shape == (2, 12)
    assert batch["labels"][1].tolist() == [X, B_LOC, X] + [X] * 9
    assert batch["attention_mask"][1].sum().item() == 3


def test_real_btc_first_subword_labels_are_the_word_tags(minilm_tokenizer):
    """On real tweets, every word that yields a WordPiece keeps exactly its tag, in order."""
    train = load_ner_dataset({"train": btc_files()["train"]})["train"].select(range(200))

    prepared = prepare_ner_features(datasets.DatasetDict({"train": train}), minilm_tokenizer)["train"]

    for words, tags, labels in zip(train["tokens"], train["ner_tags"], prepared["labels"], strict=True):
        expected = [tag for word, tag in zip(words, tags, strict=True) if minilm_tokenizer.tokenize(word)]
        assert [label for label in labels if label != X] == expected
