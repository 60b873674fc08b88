"""Transfer sets: unlabeled text read in every documented shape, labelled by the teacher, mixed at a ratio."""

import json

import pytest
import torch
from conftest import tiny_ner_task

from hfkdq.augment import LABEL_IS_GOLD
from hfkdq.transfer import (
    TransferFileError,
    mix_transfer,
    read_glue_transfer,
    read_ner_transfer,
    transfer_examples,
)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "transfer.txt",
            "Obama visits Paris\nNew York  is big\n",
            [["Obama", "visits", "Paris"], ["New", "York", "is", "big"]],
        ),
        ("transfer.txt", "Obama\nvisits\n\nNew\nYork\n", [["Obama", "visits"], ["New", "York"]]),
        ("transfer.txt", "\ufeffObama visits\r\nParis today\r\n", [["Obama", "visits"], ["Paris", "today"]]),
        ("transfer.conll", "Obama\tNNP\nvisits\tVBZ\n\nParis\tNNP\n", [["Obama", "visits"], ["Paris"]]),
        (
            "transfer.jsonl",
            '{"tokens": ["Obama", "visits"]}\n\n{"text": "New York  is big"}\n{"sentence": "Paris"}\n',
            [["Obama", "visits"], ["New", "York", "is", "big"], ["Paris"]],
        ),
        (
            "transfer.tsv",
            'id\ttext\n1\tObama visits Paris\n2\tNew "York\n',
            [["Obama", "visits", "Paris"], ["New", '"York']],
        ),
        (
            "transfer.csv",
            'text,source\n"Obama, in Paris",news\n"two\nlines",web\n',
            [["Obama,", "in", "Paris"], ["two", "lines"]],
        ),
    ],
    ids=[
        "sentence-per-line",
        "tagless-conll",
        "bom-crlf",
        "conll-pos-column",
        "jsonl",
        "tsv-column",
        "csv-quoted",
    ],
)
def test_ner_transfer_files_of_every_documented_shape(name, content, expected, tmp_path):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8"))
    assert read_ner_transfer(path) == expected


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("transfer.txt", b"", "holds no text"),
        ("transfer.txt", b"\n\n  \n", "holds no text"),
        ("transfer.jsonl", b"\n", "holds no text"),
        ("transfer.tsv", b"text\n", "holds no text"),
        ("transfer.jsonl", b'{"text": ""}\n', "holds no text"),
        ("transfer.txt", b"fine line\n\xff\xfe bad\n", r"transfer.txt:2: not UTF-8"),
        (
            "transfer.txt",
            b"-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n",
            r"transfer.txt:1: -DOCSTART- marks a labelled CoNLL",
        ),
        (
            "transfer.txt",
            b"EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n",
            r"transfer.txt:1: looks like a tagged CoNLL file .*'B-ORG'",
        ),
        ("transfer.conll", b"\nObama\tB-PER\nvisits\tO\n", r"transfer.conll:2: looks like a tagged CoNLL"),
        (
            "transfer.jsonl",
            b'{"text": "ok"}\n{"text": null}\n',
            r"transfer.jsonl:2: 'text' is null, not text",
        ),
        ("transfer.jsonl", b'{"text": 7}\n', r"transfer.jsonl:1: 'text' is a int, not text"),
        ("transfer.jsonl", b'{"tokens": ["a", null]}\n', r"transfer.jsonl:1: 'tokens' is null"),
        (
            "transfer.jsonl",
            b'{"text": "ok"}\n{"txt": "x"}\n',
            r"transfer.jsonl:2: no 'tokens' or 'text' or 'sentence' field",
        ),
        ("transfer.jsonl", b'{"text": "ok"}\n{"text": \n', r"transfer.jsonl:2: not valid JSON"),
        ("transfer.jsonl", b'["a", "b"]\n', r"transfer.jsonl:1: a JSON array"),
        ("transfer.jsonl", b'"just a string"\n', r"transfer.jsonl:1: a JSON str, not an object"),
        ("transfer.csv", b"text,source\nok,web\nbad\n", r"transfer.csv:3: 1 fields, the header has 2"),
        ("missing.txt", None, "does not exist"),
    ],
)
def test_unusable_transfer_files_are_refused_naming_file_and_line(name, content, message, tmp_path):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TransferFileError, match=message):
        read_ner_transfer(path)


def test_plain_sentences_that_end_in_a_tag_like_word_are_not_taken_for_conll(tmp_path):
    path = tmp_path / "transfer.txt"
    path.write_text("Plan B-2 was dropped\nthe letter O\nit rained in Paris\nNew York is big\n")
    assert len(read_ner_transfer(path)) == 4


def test_glue_transfer_reads_a_header_jsonl_or_plain_sentences(tmp_path):
    table = tmp_path / "pairs.tsv"
    table.write_text('sentence1\tsentence2\nA man "sleeps.\tSomeone rests.\n')
    assert read_glue_transfer(table, ("sentence1", "sentence2")) == {
        "sentence1": ['A man "sleeps.'],
        "sentence2": ["Someone rests."],
    }
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text('{"sentence1": "a", "sentence2": "b", "label": null}\n')
    assert read_glue_transfer(jsonl, ("sentence1", "sentence2")) == {"sentence1": ["a"], "sentence2": ["b"]}
    plain = tmp_path / "sentences.txt"
    plain.write_text("a fine film\n\ndull\n")
    assert read_glue_transfer(plain, ("sentence",)) == {"sentence": ["a fine film", "dull"]}
    with pytest.raises(TransferFileError, match="needs a header"):
        read_glue_transfer(plain, ("sentence1", "sentence2"))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("t.jsonl", b'{"sentence": null}\n', r"t.jsonl:1: 'sentence' is null"),
        ("t.jsonl", b'{"text": "a"}\n', r"t.jsonl:1: no 'sentence' field"),
        ("t.tsv", b"sentence\n", "holds no text"),
        ("t.txt", b"-DOCSTART- O\n\nEU B-ORG\n", r"t.txt:1: -DOCSTART-"),
    ],
)
def test_unusable_glue_transfer_files_are_refused(name, content, message, tmp_path):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TransferFileError, match=message):
        read_glue_transfer(path, ("sentence",))


def test_transfer_examples_are_tokenized_like_the_training_set_and_mixed_at_the_ratio(
    minilm_tokenizer, tmp_path
):
    task = tiny_ner_task(minilm_tokenizer, "btc", train_sentences=20, eval_sentences=4)
    path = tmp_path / "transfer.txt"
    path.write_text("\n".join(["Obama visits Paris today", "the cat sat on the mat", "Berlin is big"] * 10))
    transfer = transfer_examples(task, path)
    first = transfer[0]
    assert sum(label != -100 for label in first["labels"]) == 4, (
        "one counted position per word, its first subword"
    )
    assert (
        first["input_ids"]
        == task.featurize({"tokens": [["Obama", "visits", "Paris", "today"]], "ner_tags": [[0] * 4]})[
            "input_ids"
        ][0]
    )

    mixed = mix_transfer(task.train_dataset, transfer, ratio=0.5, seed=1)
    assert len(mixed) == 20 + 10
    assert sum(mixed[LABEL_IS_GOLD]) == 20


def test_cross_entropy_skips_teacher_labelled_tokens():
    from hfkdq.loss_terms import DistillationBatch, ce_term

    logits = torch.randn(2, 3, 4)
    labels = torch.tensor([[0, 1, -100], [2, 3, 1]])
    batch = DistillationBatch(
        student_logits=logits,
        labels=labels,
        token_mask=None,
        attention_mask=None,
        token_level=True,
        is_regression=False,
        num_items=None,
        temperature=1.0,
        hidden_loss="mse",
        label_is_gold=torch.tensor([1, 0]),
    )
    expected = torch.nn.functional.cross_entropy(logits[0, :2], labels[0, :2])
    assert ce_term(batch).item() == pytest.approx(expected.item(), rel=1e-6)


def _conll(sentences: list[list[tuple[str, str]]]) -> str:
    return "\n\n".join("\n".join(f"{word} {tag}" for word, tag in sentence) for sentence in sentences) + "\n"


def _ner_task(tokenizer, train_file, validation_file, max_train_samples):
    from hfkdq.tasks.ner import NerDataArguments, build_ner_task

    data_args = NerDataArguments(
        train_file=str(train_file), validation_file=str(validation_file), max_train_samples=max_train_samples
    )
    return build_ner_task(data_args, tokenizer)


def test_the_training_remainder_becomes_transfer_data_and_its_labels_are_never_read(
    minilm_tokenizer, tmp_path
):
    kept = [[("Obama", "B-PER"), ("visits", "O"), ("Paris", "B-LOC")], [("Berlin", "B-LOC"), ("is", "O")]]
    rest = [[("Merkel", "B-PER"), ("met", "O"), ("Obama", "B-PER")], [("London", "B-LOC"), ("calls", "O")]]
    # The same words with other labels (from the same label set) past the cut.
    relabelled = [
        [(word, {"O": "B-LOC", "B-PER": "O", "B-LOC": "B-PER"}[tag]) for word, tag in s] for s in rest
    ]
    (tmp_path / "validation.txt").write_text(_conll(kept))
    tasks = []
    for name, tail in (("gold.txt", rest), ("relabelled.txt", relabelled)):
        (tmp_path / name).write_text(_conll(kept + tail))
        tasks.append(_ner_task(minilm_tokenizer, tmp_path / name, tmp_path / "validation.txt", 2))
    gold, corrupted = tasks
    assert gold.train_remainder.column_names == ["tokens"], "the labels are dropped where the split is cut"
    assert gold.train_remainder["tokens"] == [["Merkel", "met", "Obama"], ["London", "calls"]]
    assert len(gold.train_dataset) == 2
    assert transfer_examples(gold, train_remainder=True).to_dict() == (
        transfer_examples(corrupted, train_remainder=True).to_dict()
    )


def test_a_remainder_that_does_not_exist_is_refused(minilm_tokenizer, tmp_path):
    sentences = [[("Obama", "B-PER"), ("visits", "O")], [("Berlin", "B-LOC")]]
    (tmp_path / "train.txt").write_text(_conll(sentences))
    for limit in (None, 2, 5):
        task = _ner_task(minilm_tokenizer, tmp_path / "train.txt", tmp_path / "train.txt", limit)
        with pytest.raises(
            TransferFileError, match="nothing remains of the training split; pass --max_train_samples"
        ):
            transfer_examples(task, train_remainder=True)


def _sst2_files(directory, flip_rest: bool, kept: int) -> dict[str, str]:
    words = ["fine", "dull", "bright", "slow", "warm", "flat", "smart", "tired"]
    rows = [(f"a {words[i % 8]} film number {i}", i % 2) for i in range(40)]
    if flip_rest:
        rows = rows[:kept] + [(text, 1 - label) for text, label in rows[kept:]]
    directory.mkdir()
    (directory / "train.tsv").write_text(
        "sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows)
    )
    (directory / "validation.tsv").write_text(
        "sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows[:8])
    )
    return {"train": str(directory / "train.tsv"), "validation": str(directory / "validation.tsv")}


def test_a_remainder_run_labels_transfer_data_once_through_the_cache_and_never_reads_its_labels(
    minilm_tokenizer, tmp_path, monkeypatch
):
    """End to end: the student's training steps run no teacher forward (it would raise), the cache
    holds gold + transfer examples, and flipping every label past the cut changes nothing."""
    from conftest import import_script, tiny_bert_config
    from transformers import BertForSequenceClassification

    from hfkdq.trainer import DistillationTrainer

    def no_live_teacher(self, inputs):
        raise AssertionError("a training step ran the teacher")

    monkeypatch.setattr(DistillationTrainer, "_teacher_forward", no_live_teacher)
    config = tiny_bert_config(num_labels=2)
    config.id2label, config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "teacher")
    minilm_tokenizer.save_pretrained(tmp_path / "teacher")
    recipe = import_script("recipes/distill_bert_glue.py")
    runs = []
    for flip in (False, True):
        files = _sst2_files(tmp_path / f"data-{flip}", flip, kept=16)
        output_dir = tmp_path / f"run-{flip}"
        runs.append(
            recipe.main(
                [
                    "--task_name",
                    "sst2",
                    "--train_file",
                    files["train"],
                    "--validation_file",
                    files["validation"],
                    "--max_train_samples",
                    "16",
                    "--transfer_train_remainder",
                    "true",
                    "--transfer_ratio",
                    "1.5",
                    "--teacher_name_or_path",
                    str(tmp_path / "teacher"),
                    "--student_num_layers",
                    "2",
                    "--output_dir",
                    str(output_dir),
                    "--max_steps",
                    "4",
                    "--per_device_train_batch_size",
                    "8",
                    "--learning_rate",
                    "1e-3",
                    "--hidden_weight",
                    "0",
                    "--attention_weight",
                    "0",
                    "--eval_strategy",
                    "no",
                    "--save_strategy",
                    "no",
                    "--report_to",
                    "none",
                    "--seed",
                    "0",
                ]
            )  # fmt: skip
        )
        cache = json.loads((output_dir / "teacher-cache" / "hfkdq_teacher_cache.json").read_text())
        assert cache["num_examples"] == 16 + 24, "the cache holds the teacher's outputs for gold + transfer"
    plain, flipped = runs
    assert plain["student"]["transfer_examples"] == 24
    assert plain["student"]["teacher_cache"].endswith("teacher-cache")
    assert plain["train_metrics"]["train_loss"] == flipped["train_metrics"]["train_loss"]
    for key in ("loss", "accuracy"):
        assert (
            plain["student"]["metrics"]["validation"][key] == flipped["student"]["metrics"]["validation"][key]
        )
