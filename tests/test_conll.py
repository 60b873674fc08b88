"""Reading CoNLL NER files: IOB2 out whatever IOB comes in, clear errors that point at file:line."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
from conftest import SHARED_DATA, TEST_DATA, requires_shared_data

from hfkdq.data.conll import (
    CoNLLFormatError,
    label_names_of,
    load_ner_dataset,
    ner_label_names,
    read_conll,
)
from hfkdq.resources import btc_files

BTC_LABELS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
CONLL2003_LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def write(tmp_path: Path, text: str, name: str = "sample.conll") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def tags_of(dataset: datasets.Dataset) -> list[list[str]]:
    names = label_names_of(dataset)
    return [[names[index] for index in row] for row in dataset["ner_tags"]]


# --- reading well-formed files -------------------------------------------------------------------------


def test_tab_separated_file_keeps_spaces_inside_tokens_and_derives_labels():
    dataset = read_conll(TEST_DATA / "ner_tabs_iob2.conll")

    assert dataset["tokens"] == [["Jean-Claude", "likes", "New", "York"], ["ke s", "@Acme"]]
    assert tags_of(dataset) == [["B-PER", "O", "B-LOC", "I-LOC"], ["O", "B-ORG"]]
    assert label_names_of(dataset) == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def test_features_match_the_hub_ner_schema():
    features = read_conll(TEST_DATA / "ner_tabs_iob2.conll").features

    assert features["tokens"].feature == datasets.Value("string")
    assert isinstance(features["ner_tags"].feature, datasets.ClassLabel)
    assert list(features) == ["tokens", "ner_tags"]


def test_space_separated_columns_use_first_as_token_and_last_as_tag_and_skip_docstart():
    dataset = read_conll(TEST_DATA / "ner_docstart_iob1.txt")

    assert dataset["tokens"] == [
        ["EU", "rejects", "German", "call"],
        ["Peter", "Blackburn", "Mary", "said"],
        ["BRUSSELS", "European", "Commission"],
    ]


def test_iob1_is_converted_to_iob2():
    """I-X opening an entity becomes B-X; IOB1's B-X (adjacent same-type entity) stays B-X."""
    assert tags_of(read_conll(TEST_DATA / "ner_docstart_iob1.txt", scheme="iob1")) == [
        ["B-ORG", "O", "B-MISC", "O"],
        ["B-PER", "I-PER", "B-PER", "O"],
        ["B-LOC", "B-ORG", "I-ORG"],
    ]


def test_auto_scheme_converts_iob1_and_leaves_iob2_unchanged():
    iob1 = read_conll(TEST_DATA / "ner_docstart_iob1.txt", scheme="auto")
    iob2 = read_conll(TEST_DATA / "ner_tabs_iob2.conll", scheme="auto")

    assert tags_of(iob1)[2] == ["B-LOC", "B-ORG", "I-ORG"]
    assert tags_of(iob2) == tags_of(read_conll(TEST_DATA / "ner_tabs_iob2.conll", scheme="iob2"))


def test_crlf_endings_repeated_blank_lines_and_missing_final_newline_are_tolerated(tmp_path):
    path = write(tmp_path, "A B-PER\r\nb O\r\n\r\n\r\n   \r\nC I-LOC")

    dataset = read_conll(path)

    assert dataset["tokens"] == [["A", "b"], ["C"]]
    assert tags_of(dataset) == [["B-PER", "O"], ["B-LOC"]]


def test_given_label_names_fix_the_ids(tmp_path):
    path = write(tmp_path, "Paris B-LOC\nis O\n")
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]

    dataset = read_conll(path, label_names=names)

    assert dataset["ner_tags"] == [[3, 0]]
    assert label_names_of(dataset) == names


# --- errors ---------------------------------------------------------------------------------------------


def test_unknown_scheme_argument_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="auto, iob1, iob2"):
        read_conll(write(tmp_path, "a O\n"), scheme="iobes")


@pytest.mark.parametrize("tag", ["S-PER", "E-LOC", "U-ORG", "PERSON", "B-", "b-per"])
def test_tag_outside_iob_is_an_unknown_tag_scheme_at_its_line(tmp_path, tag):
    path = write(tmp_path, f"Hello O\n\nAda {tag}\n")

    with pytest.raises(CoNLLFormatError, match="unknown tag scheme") as raised:
        read_conll(path)

    assert f"{path}:3:" in str(raised.value)
    assert repr(tag) in str(raised.value)
    assert "IOB2" in str(raised.value)
    assert raised.value.line == 3


def test_line_with_a_single_column_names_file_and_line_and_the_fix(tmp_path):
    path = write(tmp_path, "Hello O\nworld\n")

    with pytest.raises(CoNLLFormatError, match="at least 2 columns") as raised:
        read_conll(path)

    assert str(raised.value).startswith(f"{path}:2:")
    assert "space or a tab" in str(raised.value)


def test_strict_iob2_rejects_an_entity_opened_by_i_and_suggests_iob1(tmp_path):
    path = write(tmp_path, "the O\nUN I-ORG\n")

    with pytest.raises(CoNLLFormatError, match="IOB2 forbids") as raised:
        read_conll(path, scheme="iob2")

    assert f"{path}:2:" in str(raised.value)
    assert "scheme='iob1'" in str(raised.value)


def test_tag_missing_from_given_label_names_names_the_tag_and_known_labels(tmp_path):
    path = write(tmp_path, "Paris B-LOC\nACME B-ORG\n")

    with pytest.raises(CoNLLFormatError) as raised:
        read_conll(path, label_names=["O", "B-LOC", "I-LOC"])

    message = str(raised.value)
    assert f"{path}:2:" in message and "'B-ORG'" in message and "['O', 'B-LOC', 'I-LOC']" in message


@pytest.mark.parametrize("text", ["", "\n\n", "-DOCSTART- -X- -X- O\n\n"])
def test_file_without_sentences_is_an_empty_split(tmp_path, text):
    path = write(tmp_path, text)

    with pytest.raises(ValueError, match="empty split") as raised:
        read_conll(path)

    assert str(path) in str(raised.value)


# --- label ordering -------------------------------------------------------------------------------------


def test_label_names_are_o_then_b_i_per_type_alphabetically_even_if_only_one_prefix_occurs():
    assert ner_label_names(["O", "I-PER", "B-LOC", "I-LOC", "O"]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def test_label_names_of_a_tag_set_without_entities_is_just_o():
    assert ner_label_names(["O", "O"]) == ["O"]


def test_label_names_reject_non_iob_tags():
    with pytest.raises(ValueError, match="unknown tag scheme"):
        ner_label_names(["O", "S-PER"])


# --- load_ner_dataset from local files ----------------------------------------------------------------


def test_local_splits_share_the_union_of_their_labels(tmp_path):
    files = {
        "train": str(write(tmp_path, "Ada B-PER\n", "train.txt")),
        "test": str(write(tmp_path, "Paris B-LOC\n", "test.txt")),
    }

    loaded = load_ner_dataset(files)

    assert list(loaded) == ["train", "test"]
    assert (
        label_names_of(loaded["train"])
        == label_names_of(loaded["test"])
        == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    )
    assert loaded["test"]["ner_tags"] == [[1]]


def test_an_empty_local_split_is_named(tmp_path):
    files = {"train": write(tmp_path, "Ada B-PER\n", "train.txt"), "dev": write(tmp_path, "\n", "dev.txt")}

    with pytest.raises(ValueError, match="empty split: split 'dev'"):
        load_ner_dataset(files)


@pytest.mark.parametrize(
    "kwargs", [{}, {"data_files": {"train": "x.txt"}, "dataset_name": "conll2003"}], ids=["neither", "both"]
)
def test_exactly_one_source_must_be_given(kwargs):
    with pytest.raises(ValueError, match="exactly one of data_files"):
        load_ner_dataset(**kwargs)


def test_data_files_must_be_a_split_mapping():
    with pytest.raises(ValueError, match="map split names"):
        load_ner_dataset(data_files="train.txt")


# --- load_ner_dataset from the Hub (load_dataset replaced: tests never touch the network) ----------------


def hub_split(tag_feature: datasets.features.FeatureType, rows: int = 1) -> datasets.Dataset:
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": tag_feature,
        }
    )
    return datasets.Dataset.from_dict(
        {"id": ["0"] * rows, "tokens": [["Ada"]] * rows, "ner_tags": [[1]] * rows}, features=features
    )


@pytest.fixture
def fake_hub(monkeypatch):
    """Make `datasets.load_dataset` return the given splits and record what it was asked for."""
    calls: list[tuple] = []

    def install(**splits: datasets.Dataset) -> list[tuple]:
        def load_dataset(name, config=None):
            calls.append((name, config))
            return datasets.DatasetDict(splits)

        monkeypatch.setattr(datasets, "load_dataset", load_dataset)
        return calls

    return install


IOB_TAGS = datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"]))


def test_hub_dataset_keeps_its_labels_and_only_the_ner_columns(fake_hub):
    calls = fake_hub(train=hub_split(IOB_TAGS), validation=hub_split(IOB_TAGS))

    loaded = load_ner_dataset(dataset_name="someone/ner", dataset_config="en")

    assert calls == [("someone/ner", "en")]
    assert loaded["train"].column_names == ["tokens", "ner_tags"]
    assert label_names_of(loaded) == ["O", "B-PER", "I-PER"]


def test_hub_dataset_without_ner_tags_says_which_columns_are_needed(fake_hub):
    fake_hub(train=hub_split(IOB_TAGS).rename_column("ner_tags", "tags"))

    with pytest.raises(ValueError, match=r"lacks column\(s\) \['ner_tags'\]"):
        load_ner_dataset(dataset_name="someone/ner")


def test_hub_dataset_with_integer_tags_and_no_class_names_is_rejected(fake_hub):
    fake_hub(train=hub_split(datasets.Sequence(datasets.Value("int64"))))

    with pytest.raises(ValueError, match="sequence of ClassLabel"):
        load_ner_dataset(dataset_name="someone/ner")


def test_hub_dataset_in_iobes_is_rejected(fake_hub):
    fake_hub(train=hub_split(datasets.Sequence(datasets.ClassLabel(names=["O", "S-PER", "B-PER", "E-PER"]))))

    with pytest.raises(ValueError, match="unknown tag scheme"):
        load_ner_dataset(dataset_name="someone/ner")


def test_an_empty_hub_split_is_named(fake_hub):
    fake_hub(train=hub_split(IOB_TAGS), test=hub_split(IOB_TAGS, rows=0))

    with pytest.raises(ValueError, match="empty split: .*split 'test'"):
        load_ner_dataset(dataset_name="someone/ner")


# --- real data ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def btc() -> datasets.DatasetDict:
    return load_ner_dataset(btc_files())


def test_embedded_btc_has_its_published_tweet_counts_and_three_types(btc):
    assert {split: len(data) for split, data in btc.items()} == {
        "train": 6338,
        "validation": 1001,
        "test": 2001,
    }
    assert label_names_of(btc) == BTC_LABELS


def test_embedded_btc_keeps_tab_separated_tokens_with_spaces(btc):
    assert any("ke s" in tokens for tokens in btc["validation"]["tokens"])


@requires_shared_data
def test_conll2003_reads_with_its_published_sizes_and_four_types():
    files = {
        split: str(SHARED_DATA / "conll2003" / f"{split}.txt") for split in ("train", "validation", "test")
    }

    conll = load_ner_dataset(files)

    assert {split: len(data) for split, data in conll.items()} == {
        "train": 14041,
        "validation": 3250,
        "test": 3453,
    }
    assert label_names_of(conll) == CONLL2003_LABELS
    assert conll["train"][0]["tokens"] == [
        "EU",
        "rejects",
        "German",
        "call",
        "to",
        "boycott",
        "British",
        "lamb",
        ".",
    ]
    assert tags_of(conll["train"].select([0])) == [
        ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]
    ]
