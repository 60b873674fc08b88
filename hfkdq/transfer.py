"""Transfer sets: unlabeled text that the teacher labels and the student learns from, beside the gold data.

A teacher knows more than its labelled training set shows; on unlabeled in-domain text its outputs
are a free training signal (Hinton et al., 2015; Tang et al., 2019). `--transfer_file` takes

- NER: one sentence per line (words split on whitespace), or CoNLL without tags (one token per line,
  a blank line between sentences; a line with several columns keeps the first);
- GLUE: a TSV/CSV with the task's text columns in its header, or, for single-sentence tasks, plain
  text with one sentence per line.

The teacher labels every transfer example once (its argmax, the pseudo-label, marks the positions
the KD term counts); the transfer examples carry ``label_is_gold = 0``, so the cross-entropy term
skips them and they train on the teacher's soft outputs only. They are mixed into the training set
at ``--transfer_ratio`` transfer examples per labelled one.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, concatenate_datasets

from hfkdq.augment import LABEL_IS_GOLD
from hfkdq.data.conll import TAGS_COLUMN, TOKENS_COLUMN

IGNORE_INDEX = -100


class TransferFileError(ValueError):
    """A transfer file that cannot be read, named with its line."""


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise TransferFileError(f"--transfer_file {path} does not exist or is not a file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise TransferFileError(
            f"{path}:{line}: not UTF-8 (byte {raw[error.start]:#x}); save the file as UTF-8"
        ) from None
    return text.splitlines()


def read_ner_transfer(path: str | Path) -> list[list[str]]:
    """Sentences as word lists, from one-sentence-per-line text or tagless CoNLL."""
    path = Path(path)
    lines = _lines(path)
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            blocks[-1].append(line.strip())
        elif blocks[-1]:
            blocks.append([])
    blocks = [block for block in blocks if block]
    if not blocks:
        raise TransferFileError(f"{path} holds no text: give one sentence per line, or CoNLL without tags")
    # Tagless CoNLL: every line one token (or tab-separated columns, the token first).
    conll = all(len(line.split()) == 1 or "\t" in line for block in blocks for line in block)
    if conll:
        sentences = [
            [line.split()[0] for line in block if not line.startswith("-DOCSTART-")] for block in blocks
        ]
    else:
        sentences = [line.split() for line in lines if line.strip()]
    sentences = [sentence for sentence in sentences if sentence]
    if not sentences:
        raise TransferFileError(f"{path} holds no sentence")
    return sentences


def read_glue_transfer(path: str | Path, text_columns: Sequence[str]) -> dict[str, list[str]]:
    """Text columns from a TSV/CSV with a header, or single sentences one per line."""
    path = Path(path)
    lines = _lines(path)
    if not any(line.strip() for line in lines):
        raise TransferFileError(f"{path} holds no text")
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in lines[0] else ","
    header = next(csv.reader([lines[0]], delimiter=delimiter))
    if all(column in header for column in text_columns):
        rows = list(
            csv.reader(lines[1:], delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else 0)
        )
        columns: dict[str, list[str]] = {column: [] for column in text_columns}
        for number, row in enumerate(rows, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise TransferFileError(f"{path}:{number}: {len(row)} fields, the header has {len(header)}")
            for column in text_columns:
                columns[column].append(row[header.index(column)])
        return columns
    if len(text_columns) != 1:
        raise TransferFileError(
            f"{path}: a sentence-pair task needs a header naming {list(text_columns)}; found {header}"
        )
    return {text_columns[0]: [line.strip() for line in lines if line.strip()]}


def load_transfer_examples(path: str | Path, task) -> Dataset:
    """The transfer file as raw examples of the task's shape (dummy labels, replaced by the teacher's)."""
    if task.head == "token":
        sentences = read_ner_transfer(path)
        raw = Dataset.from_dict({TOKENS_COLUMN: sentences, TAGS_COLUMN: [[0] * len(s) for s in sentences]})
    else:
        columns = read_glue_transfer(path, task.text_columns)
        size = len(next(iter(columns.values())))
        raw = Dataset.from_dict({**columns, "label": [0.0 if task.label_names is None else 0] * size})
    if task.featurize is None:
        raise ValueError("--transfer_file needs a task that can tokenize raw examples")
    return raw.map(
        task.featurize, batched=True, remove_columns=raw.column_names, desc="Tokenizing the transfer set"
    )


@torch.inference_mode()
def pseudo_label(teacher, features: Dataset, data_collator, batch_size: int = 64) -> Dataset:
    """Replace the dummy labels with the teacher's argmax (its prediction for regression).

    For NER the positions that had a (dummy) label, the first subword of each word, get the
    teacher's tag; the KD term counts exactly those positions.
    """
    teacher.eval()
    device = next(teacher.parameters()).device
    inputs = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in features.column_names]
    labels: list[Any] = []
    for start in range(0, len(features), batch_size):
        rows = [features[i] for i in range(start, min(start + batch_size, len(features)))]
        batch = data_collator([{key: row[key] for key in (*inputs, "labels")} for row in rows])
        logits = teacher(**{name: batch[name].to(device) for name in inputs}).logits.float().cpu()
        for row, row_logits in zip(rows, logits, strict=True):
            if row_logits.dim() == 2:  # token classification
                predicted = row_logits[: len(row["labels"])].argmax(-1).tolist()
                labels.append(
                    [
                        p if gold != IGNORE_INDEX else IGNORE_INDEX
                        for p, gold in zip(predicted, row["labels"], strict=True)
                    ]
                )
            elif row_logits.shape[-1] == 1:
                labels.append(float(row_logits[0]))
            else:
                labels.append(int(row_logits.argmax()))
    return features.remove_columns("labels").add_column("labels", labels)


def mix_transfer(labelled: Dataset, transfer: Dataset, ratio: float, seed: int = 0) -> Dataset:
    """Labelled examples (gold) plus up to ``ratio`` x as many transfer examples (teacher-labelled)."""
    if not ratio > 0:
        raise ValueError(f"transfer_ratio must be > 0, got {ratio}")
    wanted = min(len(transfer), int(round(ratio * len(labelled))))
    if wanted < len(transfer):
        chosen = np.random.default_rng(seed).choice(len(transfer), size=wanted, replace=False)
        transfer = transfer.select(sorted(chosen.tolist()))
    keep = [column for column in labelled.column_names if column in transfer.column_names]
    gold = labelled.select_columns(keep).add_column(LABEL_IS_GOLD, [1] * len(labelled))
    teacher_labelled = transfer.select_columns(keep).add_column(LABEL_IS_GOLD, [0] * len(transfer))
    return concatenate_datasets([gold, teacher_labelled.cast(gold.features)])
