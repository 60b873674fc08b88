"""Transfer sets: unlabeled text read in every documented shape, labelled by the teacher, mixed at a ratio."""

import pytest
import torch
from conftest import tiny_ner_task, tiny_token_models

from hfkdq.augment import LABEL_IS_GOLD
from hfkdq.transfer import (
    TransferFileError,
    load_transfer_examples,
    mix_transfer,
    pseudo_label,
    read_glue_transfer,
    read_ner_transfer,
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "Obama visits Paris\nNew York  is big\n",
            [["Obama", "visits", "Paris"], ["New", "York", "is", "big"]],
        ),
        ("Obama\nvisits\n\nNew\nYork\n", [["Obama", "visits"], ["New", "York"]]),
        ("\ufeffObama visits\r\nParis today\r\n", [["Obama", "visits"], ["Paris", "today"]]),
        ("-DOCSTART-\n\nObama\tNNP\nvisits\tVBZ\n", [["Obama", "visits"]]),
    ],
    ids=["sentence-per-line", "tagless-conll", "bom-crlf", "conll-with-extra-columns"],
)
def test_ner_transfer_files_of_every_documented_shape(content, expected, tmp_path):
    path = tmp_path / "transfer.txt"
    path.write_bytes(content.encode("utf-8"))
    assert read_ner_transfer(path) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no text"),
        (b"\n\n  \n", "holds no text"),
        (b"fine line\n\xff\xfe bad\n", r"transfer.txt:2: not UTF-8"),
    ],
)
def test_unreadable_transfer_files_name_the_problem(content, message, tmp_path):
    path = tmp_path / "transfer.txt"
    path.write_bytes(content)
    with pytest.raises(TransferFileError, match=message):
        read_ner_transfer(path)


def test_glue_transfer_reads_a_header_or_plain_sentences(tmp_path):
    table = tmp_path / "pairs.tsv"
    table.write_text("sentence1\tsentence2\nA man sleeps.\tSomeone rests.\n")
    assert read_glue_transfer(table, ("sentence1", "sentence2")) == {
        "sentence1": ["A man sleeps."],
        "sentence2": ["Someone rests."],
    }
    plain = tmp_path / "sentences.txt"
    plain.write_text("a fine film\n\ndull\n")
    assert read_glue_transfer(plain, ("sentence",)) == {"sentence": ["a fine film", "dull"]}
    with pytest.raises(TransferFileError, match="needs a header"):
        read_glue_transfer(plain, ("sentence1", "sentence2"))


def test_the_teacher_labels_transfer_sentences_and_they_are_mixed_at_the_ratio(minilm_tokenizer, tmp_path):
    task = tiny_ner_task(minilm_tokenizer, "btc", train_sentences=20, eval_sentences=4)
    path = tmp_path / "transfer.txt"
    path.write_text("\n".join(["Obama visits Paris today", "the cat sat on the mat", "Berlin is big"] * 10))
    transfer = load_transfer_examples(path, task)
    teacher, _ = tiny_token_models(task.label_names)
    labelled = pseudo_label(teacher, transfer, task.data_collator)
    first = labelled[0]
    words = first["labels"]
    assert sum(label != -100 for label in words) == 4, "one label per word, at its first subword"
    batch = task.data_collator(
        [{k: first[k] for k in ("input_ids", "attention_mask", "token_type_ids", "labels")}]
    )
    with torch.no_grad():
        argmax = teacher(**{k: v for k, v in batch.items() if k != "labels"}).logits.argmax(-1)[0]
    assert all(label == argmax[i].item() for i, label in enumerate(words) if label != -100)

    mixed = mix_transfer(task.train_dataset, labelled, ratio=0.5, seed=1)
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
