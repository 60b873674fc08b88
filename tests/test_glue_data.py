"""GLUE data: the task registry, the loaders for every supported source, and the errors on bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA, TEST_DATA, requires_shared_data
from datasets import ClassLabel, Dataset, DatasetDict, Value

from hfkdq.data.glue import (
    glue_data_collator,
    glue_eval_splits,
    load_glue_dataset,
    prepare_glue_features,
)
from hfkdq.glue_tasks import GLUE_TASKS, GlueTask, get_glue_task

SST2 = SHARED_DATA / "glue" / "sst2"
RTE = SHARED_DATA / "glue" / "rte"


def head(source: Path, destination: Path, rows: int) -> Path:
    """Copy the header and the first `rows` data lines of a file: real data, at test speed."""
    with source.open(encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(rows + 1)]
    destination.write_text("".join(lines), encoding="utf-8")
    return destination


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\n".join("\t".join(row) for row in ([header] if header else []) + rows) + "\n")
    return path


# ----------------------------------------------------------------------------------------------------
# Registry


def test_registry_holds_the_nine_glue_tasks():
    assert sorted(GLUE_TASKS) == sorted(
        ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"]
    )
    assert all(isinstance(task, GlueTask) and task.name == name for name, task in GLUE_TASKS.items())


@pytest.mark.parametrize(
    ("name", "metrics"),
    [
        ("cola", ("matthews_correlation",)),
        ("sst2", ("accuracy",)),
        ("mrpc", ("accuracy", "f1")),
        ("qqp", ("accuracy", "f1")),
        ("stsb", ("pearson", "spearmanr")),
        ("mnli", ("accuracy",)),
        ("qnli", ("accuracy",)),
        ("rte", ("accuracy",)),
        ("wnli", ("accuracy",)),
    ],
)
def test_each_task_uses_its_official_metrics(name, metrics):
    assert GLUE_TASKS[name].metric_names == metrics


def test_single_sentence_and_pair_tasks():
    single = {name for name, task in GLUE_TASKS.items() if not task.is_pair}
    assert single == {"cola", "sst2"}
    assert GLUE_TASKS["mnli"].text_columns == ("premise", "hypothesis")
    assert GLUE_TASKS["qnli"].text_columns == ("question", "sentence")
    assert GLUE_TASKS["qqp"].text_columns == ("question1", "question2")


def test_label_sets_follow_the_hub_encoding():
    assert {name: task.num_labels for name, task in GLUE_TASKS.items()} == {
        "cola": 2,
        "sst2": 2,
        "mrpc": 2,
        "qqp": 2,
        "stsb": 1,
        "mnli": 3,
        "qnli": 2,
        "rte": 2,
        "wnli": 2,
    }
    assert GLUE_TASKS["mnli"].label_names == ("entailment", "neutral", "contradiction")
    assert GLUE_TASKS["rte"].label_names == ("entailment", "not_entailment")
    assert GLUE_TASKS["wnli"].label_names == ("not_entailment", "entailment")


def test_stsb_is_the_only_regression_task():
    stsb = GLUE_TASKS["stsb"]
    assert stsb.is_regression and stsb.label_names is None and stsb.num_labels == 1
    assert [name for name, task in GLUE_TASKS.items() if task.is_regression] == ["stsb"]


def test_mnli_is_evaluated_on_matched_and_mismatched_validation():
    assert GLUE_TASKS["mnli"].eval_splits == ("validation_matched", "validation_mismatched")
    assert GLUE_TASKS["sst2"].eval_splits == ("validation",)


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("SST-2", "sst2"),
        ("sst-2", "sst2"),
        ("STS-B", "stsb"),
        ("CoLA", "cola"),
        ("mnli-mm", "mnli"),
        ("qnli", "qnli"),
    ],
)
def test_task_names_ignore_case_and_hyphens(alias, name):
    assert get_glue_task(alias) is GLUE_TASKS[name]


def test_unknown_task_lists_the_valid_names():
    with pytest.raises(ValueError, match="Unknown GLUE task 'sst3'") as error:
        get_glue_task("sst3")
    for name in GLUE_TASKS:
        assert name in str(error.value)


# ----------------------------------------------------------------------------------------------------
# Local files


@requires_shared_data
def test_original_glue_tsvs_load_every_row():
    """Quoting must be off: a quote character in a sentence would otherwise swallow following rows."""
    sst2 = load_glue_dataset(
        "sst2", {"train": str(SST2 / "train.tsv"), "validation": str(SST2 / "validation.tsv")}
    )
    rte = load_glue_dataset(
        "rte", {"train": str(RTE / "train.tsv"), "validation": str(RTE / "validation.tsv")}
    )
    assert (sst2["train"].num_rows, sst2["validation"].num_rows) == (67_349, 872)
    assert (rte["train"].num_rows, rte["validation"].num_rows) == (2_490, 277)


@requires_shared_data
def test_sst2_tsv_gives_the_sentence_and_a_class_label(tmp_path):
    dataset = load_glue_dataset("sst2", {"train": str(head(SST2 / "train.tsv", tmp_path / "train.tsv", 20))})
    train = dataset["train"]
    assert train.column_names == ["sentence", "label"]
    assert train.features["label"] == ClassLabel(names=["negative", "positive"])
    assert train[0] == {"sentence": "hide new secretions from the parental units ", "label": 0}


@requires_shared_data
def test_rte_string_labels_map_to_registry_ids_and_index_is_dropped(tmp_path):
    dataset = load_glue_dataset(
        "rte", {"validation": str(head(RTE / "validation.tsv", tmp_path / "dev.tsv", 30))}
    )
    validation = dataset["validation"]
    assert validation.column_names == ["sentence1", "sentence2", "label"]
    raw = list(csv.DictReader((tmp_path / "dev.tsv").open(), delimiter="\t", quoting=csv.QUOTE_NONE))
    names = validation.features["label"].names
    assert [names[label] for label in validation["label"]] == [row["label"] for row in raw]
    assert set(validation["label"]) == {0, 1}


@requires_shared_data
def test_csv_and_json_lines_load_like_the_tsv(tmp_path):
    tsv = head(RTE / "train.tsv", tmp_path / "train.tsv", 25)
    rows = list(csv.DictReader(tsv.open(), delimiter="\t", quoting=csv.QUOTE_NONE))
    with (tmp_path / "train.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / "train.jsonl").write_text(
        "".join(json.dumps({**row, "idx": i}) + "\n" for i, row in enumerate(rows))
    )

    expected = load_glue_dataset("rte", {"train": str(tsv)})["train"].to_dict()
    for name in ("train.csv", "train.jsonl"):
        assert load_glue_dataset("rte", {"train": str(tmp_path / name)})["train"].to_dict() == expected


def test_a_tsv_sentence_may_contain_quote_characters(tmp_path):
    path = write_tsv(
        tmp_path / "train.tsv", ["sentence", "label"], [['"an unbalanced quote', "1"], ["plain", "0"]]
    )
    train = load_glue_dataset("sst2", {"train": str(path)})["train"]
    assert train["sentence"] == ['"an unbalanced quote', "plain"]


def test_json_array_with_integer_labels_and_hub_style_idx(tmp_path):
    records = [{"idx": 0, "sentence": "good", "label": 1}, {"idx": 1, "sentence": "bad", "label": 0}]
    (tmp_path / "dev.json").write_text(json.dumps(records))
    validation = load_glue_dataset("sst2", {"validation": str(tmp_path / "dev.json")})["validation"]
    assert validation.to_dict() == {"sentence": ["good", "bad"], "label": [1, 0]}


def test_original_mnli_columns_are_recognised(tmp_path):
    """The GLUE distribution names MNLI's texts sentence1/sentence2 and its label gold_label."""
    header = ["index", "genre", "sentence1", "sentence2", "label1", "gold_label"]
    rows = [["0", "fiction", "A cat sat.", "An animal sat.", "neutral", "entailment"]]
    rows.append(["1", "fiction", "A cat sat.", "Nothing sat.", "contradiction", "contradiction"])
    path = write_tsv(tmp_path / "dev_matched.tsv", header, rows)
    dataset = load_glue_dataset("mnli", {"validation_matched": str(path)})
    assert dataset["validation_matched"].to_dict() == {
        "premise": ["A cat sat.", "A cat sat."],
        "hypothesis": ["An animal sat.", "Nothing sat."],
        "label": [0, 2],
    }
    assert glue_eval_splits("mnli", dataset) == ["validation_matched"]


def test_headerless_cola_tsv_is_read_as_data(tmp_path):
    rows = [
        ["gj04", "1", "", "The sailors rode the breeze clear of the rocks."],
        ["gj04", "0", "*", "Rocks the."],
    ]
    path = write_tsv(tmp_path / "train.tsv", [], rows)
    train = load_glue_dataset("cola", {"train": str(path)})["train"]
    assert train.to_dict() == {"sentence": [rows[0][3], rows[1][3]], "label": [1, 0]}


def test_stsb_scores_are_floats():
    train = load_glue_dataset("stsb", {"train": str(TEST_DATA / "glue_stsb_tiny.csv")})["train"]
    assert train.column_names == ["sentence1", "sentence2", "label"]
    assert train.features["label"] == Value("float32")
    assert train.num_rows == 40 and train[0]["label"] == pytest.approx(5.0)


def test_own_csv_with_named_text_and_label_columns(tmp_path):
    (tmp_path / "mine.csv").write_text("id,text,sentiment\n1,lovely,positive\n2,awful,negative\n")
    train = load_glue_dataset(
        "sst2", {"train": str(tmp_path / "mine.csv")}, text_columns=["text"], label_column="sentiment"
    )["train"]
    assert train.to_dict() == {"sentence": ["lovely", "awful"], "label": [1, 0]}


def test_a_test_split_may_lack_labels(tmp_path):
    path = write_tsv(tmp_path / "test.tsv", ["index", "sentence1", "sentence2"], [["0", "A b.", "C d."]])
    test = load_glue_dataset("rte", {"test": str(path)})["test"]
    assert test["label"] == [-1]


# ----------------------------------------------------------------------------------------------------
# Hub (the network is replaced by an in-memory dataset with the Hub's schema)


def test_hub_splits_are_loaded_by_task_config_and_reduced_to_the_schema(monkeypatch):
    calls = []
    label = ClassLabel(names=["entailment", "neutral", "contradiction"])

    def fake_load_dataset(name, config=None):
        calls.append((name, config))
        split = {"premise": ["P"], "hypothesis": ["H"], "label": [2], "idx": [0]}
        return DatasetDict(
            {
                key: Dataset.from_dict(split).cast_column("label", label)
                for key in ("train", "validation_matched", "validation_mismatched")
            }
        )

    monkeypatch.setattr("datasets.load_dataset", fake_load_dataset)
    dataset = load_glue_dataset("MNLI")
    assert calls == [("nyu-mll/glue", "mnli")]
    assert dataset["validation_mismatched"].to_dict() == {"premise": ["P"], "hypothesis": ["H"], "label": [2]}
    assert glue_eval_splits("mnli", dataset) == ["validation_matched", "validation_mismatched"]


def test_hub_class_ids_in_another_order_are_remapped_by_name(monkeypatch):
    """Another dataset may list the same label names in another order: names, not ids, decide."""
    flipped = ClassLabel(names=["entailment", "not_entailment"])  # WNLI's registry order is the reverse
    split = Dataset.from_dict({"sentence1": ["A."], "sentence2": ["B."], "label": [0]}).cast_column(
        "label", flipped
    )
    monkeypatch.setattr("datasets.load_dataset", lambda name, config=None: DatasetDict({"train": split}))
    train = load_glue_dataset("wnli", dataset_name="someone/wnli-copy")["train"]
    assert train.features["label"].int2str(train[0]["label"]) == "entailment"


# ----------------------------------------------------------------------------------------------------
# Bad input


def test_local_files_and_a_hub_dataset_together_are_ambiguous(tmp_path):
    with pytest.raises(ValueError, match="either data_files .* or dataset_name"):
        load_glue_dataset("sst2", {"train": str(tmp_path / "train.tsv")}, dataset_name="nyu-mll/glue")


def test_missing_column_names_the_file_and_the_column(tmp_path):
    path = write_tsv(tmp_path / "broken.tsv", ["index", "sentence1", "label"], [["0", "A b.", "entailment"]])
    with pytest.raises(ValueError, match=r"broken\.tsv.*'sentence2'"):
        load_glue_dataset("rte", {"train": str(path)})


def test_missing_labels_outside_a_test_split_are_an_error(tmp_path):
    path = write_tsv(tmp_path / "dev.tsv", ["sentence"], [["fine"]])
    with pytest.raises(ValueError, match=r"dev\.tsv.*'label'"):
        load_glue_dataset("sst2", {"validation": str(path)})


@pytest.mark.parametrize("bad", ["maybe", "2", "-1"])
def test_label_outside_the_task_label_set_names_file_and_value(tmp_path, bad):
    path = write_tsv(
        tmp_path / "odd.tsv",
        ["sentence1", "sentence2", "label"],
        [["A.", "B.", "entailment"], ["C.", "D.", bad]],
    )
    with pytest.raises(ValueError, match=rf"odd\.tsv: label '{bad}' \(data row 2\)"):
        load_glue_dataset("rte", {"train": str(path)})


def test_non_numeric_similarity_score_is_an_error(tmp_path):
    (tmp_path / "sts.csv").write_text("sentence1,sentence2,label\nA.,B.,high\n")
    with pytest.raises(ValueError, match=r"sts\.csv: label 'high'"):
        load_glue_dataset("stsb", {"train": str(tmp_path / "sts.csv")})


def test_pair_task_given_one_text_column_is_an_error(tmp_path):
    (tmp_path / "mine.csv").write_text("text,label\nA.,entailment\n")
    with pytest.raises(ValueError, match="'rte'.*pair of texts.*1 were given"):
        load_glue_dataset("rte", {"train": str(tmp_path / "mine.csv")}, text_columns=["text"])


def test_unsupported_file_type_is_an_error(tmp_path):
    (tmp_path / "train.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match=r"train\.parquet.*\.tsv, \.csv, \.json or \.jsonl"):
        load_glue_dataset("sst2", {"train": str(tmp_path / "train.parquet")})


# ----------------------------------------------------------------------------------------------------
# Features and batching


def test_features_are_tokenized_without_padding(minilm_tokenizer, tmp_path):
    rows = [["A short one.", "Yes."], ["A much longer premise with many more words in it.", "No."]]
    path = write_tsv(
        tmp_path / "train.tsv", ["sentence1", "sentence2", "label"], [r + ["entailment"] for r in rows]
    )
    features = prepare_glue_features(load_glue_dataset("rte", {"train": str(path)}), minilm_tokenizer, "rte")
    train = features["train"]
    assert set(train.column_names) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert train["labels"] == [0, 0]
    lengths = [len(ids) for ids in train["input_ids"]]
    assert lengths[0] < lengths[1], "each example keeps its own length; the collator pads per batch"
    assert train[0]["input_ids"].count(minilm_tokenizer.sep_token_id) == 2, "pairs are encoded together"


def test_max_length_truncates(minilm_tokenizer):
    dataset = DatasetDict({"train": Dataset.from_dict({"sentence": ["word " * 100], "label": [1]})})
    train = prepare_glue_features(dataset, minilm_tokenizer, "sst2", max_length=16)["train"]
    assert len(train[0]["input_ids"]) == 16


def test_unlabelled_test_split_loses_its_labels(minilm_tokenizer):
    dataset = DatasetDict({"test": Dataset.from_dict({"sentence": ["a", "b"], "label": [-1, -1]})})
    assert "labels" not in prepare_glue_features(dataset, minilm_tokenizer, "sst2")["test"].column_names


def test_collator_pads_each_batch_to_its_longest_example(minilm_tokenizer):
    dataset = DatasetDict(
        {"train": Dataset.from_dict({"sentence": ["short", "a bit longer than that"], "label": [0, 1]})}
    )
    train = prepare_glue_features(dataset, minilm_tokenizer, "sst2")["train"]
    batch = glue_data_collator(minilm_tokenizer)([train[0], train[1]])
    longest = max(len(ids) for ids in train["input_ids"])
    assert batch["input_ids"].shape == (2, longest)
    assert batch["labels"].tolist() == [0, 1]


def test_a_header_only_file_names_the_split_and_file(minilm_tokenizer, tmp_path):
    from hfkdq.tasks.glue import GlueDataArguments, build_glue_task

    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\na fine film\t1\n")
    header_only = tmp_path / "dev.tsv"
    header_only.write_text("sentence\tlabel\n")
    arguments = GlueDataArguments(task_name="sst2", train_file=str(train), validation_file=str(header_only))
    with pytest.raises(ValueError, match=r"validation split \(.*dev.tsv\) has no examples"):
        build_glue_task(arguments, minilm_tokenizer)


@pytest.mark.parametrize("field", ["max_train_samples", "max_eval_samples"])
def test_zero_samples_are_refused_when_parsed(field):
    from hfkdq.tasks.glue import GlueDataArguments

    with pytest.raises(ValueError, match=f"{field} must be a whole number >= 1"):
        GlueDataArguments(task_name="sst2", **{field: 0})
