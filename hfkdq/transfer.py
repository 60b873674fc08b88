"""Transfer sets: unlabeled text that the teacher labels and the student learns from, beside the gold data.

A teacher knows more than its labelled training set shows; on unlabeled in-domain text its outputs
are a free training signal (Hinton et al., 2015; Tang et al., 2019). Two sources, usable together:

- ``--transfer_file``, read by its suffix:
  - ``.jsonl``: one JSON object per line; NER takes ``tokens`` (a list of words) or a ``text``/
    ``sentence`` string, GLUE the task's text columns;
  - ``.tsv``/``.csv``: a header naming the text column(s) (NER: ``tokens``, ``text`` or ``sentence``,
    split on whitespace; GLUE: the task's text columns);
  - anything else: one sentence per line, or (NER) CoNLL without tags (one token per line, a blank
    line between sentences; extra columns such as POS keep the first). A tagged CoNLL file (NER tags
    in its last column, ``-DOCSTART-``) is refused: its tags would be read as words.
- ``--transfer_train_remainder``: the training examples that ``--max_train_samples`` cut off, with
  their labels dropped where the task is built (`TaskData.train_remainder` holds text only).

The transfer examples carry ``label_is_gold = 0``: the cross-entropy term skips them, and their
``labels`` column only marks the positions the KD term counts (each word's first sub-token for
NER). They train on the teacher's soft outputs, which the teacher computes once, into the teacher
cache, before training. They are mixed in at up to ``--transfer_ratio`` per labelled example.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from datasets import Dataset, concatenate_datasets

from hfkdq.augment import LABEL_IS_GOLD
from hfkdq.data.conll import DOCSTART, TAGS_COLUMN, TOKENS_COLUMN

NER_TEXT_COLUMNS = (TOKENS_COLUMN, "text", "sentence")
"""Columns a JSONL/TSV/CSV transfer file for NER may hold its text in, in order of preference."""
_TAG = re.compile(r"^(?:O|[BIESLU]-\S+)$")
_FIX_TAGGED = (
    "--transfer_file takes unlabeled text: keep only the token column (e.g. cut -d' ' -f1) without "
    "-DOCSTART- lines, or give labelled data as --train_file"
)


class TransferFileError(ValueError):
    """A transfer source that cannot be used, named with its file and line."""


def _text(path: Path) -> str:
    if not path.is_file():
        raise TransferFileError(f"--transfer_file {path} does not exist or is not a file")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise TransferFileError(
            f"{path}:{line}: not UTF-8 (byte {raw[error.start]:#x}); save the file as UTF-8"
        ) from None


def _refuse_tagged_conll(path: Path, lines: Sequence[str]) -> None:
    """A labelled CoNLL file read as text would train on its tags as words: refuse it, naming the line."""
    multi_column, tagged = 0, []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if fields and fields[0] == DOCSTART:
            raise TransferFileError(f"{path}:{number}: {DOCSTART} marks a labelled CoNLL file; {_FIX_TAGGED}")
        if len(fields) >= 2:
            multi_column += 1
            if _TAG.match(fields[-1]):
                tagged.append((number, fields[-1]))
    # Plain sentences rarely end in "O" or "B-X"; a tagged file's lines nearly all do.
    if tagged and 2 * len(tagged) >= multi_column:
        number, tag = tagged[0]
        raise TransferFileError(
            f"{path}:{number}: looks like a tagged CoNLL file (its last column {tag!r} is an NER tag); {_FIX_TAGGED}"
        )


def _plain_ner(path: Path, lines: list[str]) -> list[list[str]]:
    """One sentence per line, or tagless CoNLL (every line of every block a single token/first column)."""
    _refuse_tagged_conll(path, lines)
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            blocks[-1].append(line.strip())
        elif blocks[-1]:
            blocks.append([])
    blocks = [block for block in blocks if block]
    conll = all(len(line.split()) == 1 or "\t" in line for block in blocks for line in block)
    if conll:
        return [[line.split()[0] for line in block] for block in blocks]
    return [line.split() for line in lines if line.strip()]


TABLE_KINDS = {".jsonl": "jsonl", ".json": "jsonl", ".tsv": "tsv", ".csv": "csv"}


def _records(path: Path, text: str, kind: str, columns: Sequence[str]):
    """(line number, record) per JSONL object or table row, each record a dict of the file's fields."""
    if kind == "jsonl":
        if text.lstrip().startswith("["):
            raise TransferFileError(f"{path}:1: a JSON array; write one JSON object per line (JSONL)")
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise TransferFileError(
                    f"{path}:{number}: not valid JSON ({error.msg}); write one JSON object per line"
                ) from None
            if not isinstance(record, dict):
                raise TransferFileError(
                    f"{path}:{number}: a JSON {type(record).__name__}, not an object; write one object per "
                    f"line with a {' or '.join(columns)} field"
                )
            yield number, record
        return
    delimiter = "\t" if kind == "tsv" else ","
    # GLUE's TSVs hold bare quotes inside sentences: tabs alone delimit their fields.
    quoting = csv.QUOTE_NONE if kind == "tsv" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting)
    header = next(reader, None)
    if header is None:
        return
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise TransferFileError(
                f"{path}:{reader.line_num}: {len(row)} fields, the header has {len(header)}; quote fields "
                "that hold the delimiter"
            )
        yield reader.line_num, dict(zip(header, row, strict=True))


def _column_of(path: Path, record: dict, number: int, candidates: Sequence[str]) -> str:
    found = next((column for column in candidates if column in record), None)
    if found is None:
        raise TransferFileError(
            f"{path}:{number}: no {' or '.join(repr(c) for c in candidates)} field (found {sorted(record)}); "
            "name the text column so"
        )
    return found


def _checked_text(path: Path, number: int, column: str, value) -> str:
    if not isinstance(value, str):
        shown = "null" if value is None else f"a {type(value).__name__}"
        raise TransferFileError(
            f"{path}:{number}: {column!r} is {shown}, not text; give a string or drop the row"
        )
    return value


def read_ner_transfer(path: str | Path) -> list[list[str]]:
    """Sentences as word lists, from any transfer file shape the module docstring lists."""
    path = Path(path)
    text = _text(path)
    kind = TABLE_KINDS.get(path.suffix.lower())
    if kind is not None:
        sentences = []
        for number, record in _records(path, text, kind, NER_TEXT_COLUMNS):
            column = _column_of(path, record, number, NER_TEXT_COLUMNS)
            value = record[column]
            if isinstance(value, list):
                words = [_checked_text(path, number, column, word) for word in value]
            else:
                words = _checked_text(path, number, column, value).split()
            sentences.append([word for word in words if word.strip()])
    else:
        sentences = _plain_ner(path, text.splitlines())
    sentences = [sentence for sentence in sentences if sentence]
    if not sentences:
        raise TransferFileError(
            f"{path} holds no text: give one sentence per line, CoNLL without tags, or JSONL/TSV/CSV with a "
            f"{'/'.join(NER_TEXT_COLUMNS)} column"
        )
    return sentences


def read_glue_transfer(path: str | Path, text_columns: Sequence[str]) -> dict[str, list[str]]:
    """Text columns from JSONL, a TSV/CSV with a header, or (single-sentence tasks) one sentence per line."""
    path = Path(path)
    text = _text(path)
    lines = text.splitlines()
    kind = TABLE_KINDS.get(path.suffix.lower())
    if kind is None:
        # A header naming the text columns makes a table of any suffix.
        first = next((line for line in lines if line.strip()), "")
        delimiter = "\t" if "\t" in first else ","
        if all(column in next(csv.reader([first], delimiter=delimiter), []) for column in text_columns):
            kind = "tsv" if delimiter == "\t" else "csv"
    columns: dict[str, list[str]] = {column: [] for column in text_columns}
    if kind is not None:
        for number, record in _records(path, text, kind, text_columns):
            missing = [column for column in text_columns if column not in record]
            if missing:
                raise TransferFileError(
                    f"{path}:{number}: no {missing[0]!r} field (found {sorted(record)}); the task reads "
                    f"{list(text_columns)}"
                )
            values = [_checked_text(path, number, column, record[column]) for column in text_columns]
            if not all(value.strip() for value in values):
                continue
            for column, value in zip(text_columns, values, strict=True):
                columns[column].append(value)
    else:
        if len(text_columns) != 1:
            raise TransferFileError(
                f"{path}: a sentence-pair task needs a header (or JSONL fields) naming {list(text_columns)}"
            )
        _refuse_tagged_conll(path, lines)
        columns[text_columns[0]] = [line.strip() for line in lines if line.strip()]
    if not columns[text_columns[0]]:
        raise TransferFileError(
            f"{path} holds no text: give JSONL, a TSV/CSV with a header naming {list(text_columns)}"
            + (", or one sentence per line" if len(text_columns) == 1 else "")
        )
    return columns


def _raw_examples(texts: Dataset, task) -> Dataset:
    """Text-only examples in the task's raw shape, with placeholder labels (never read: not gold)."""
    if task.head == "token":
        return Dataset.from_dict(
            {
                TOKENS_COLUMN: texts[TOKENS_COLUMN],
                TAGS_COLUMN: [[0] * len(words) for words in texts[TOKENS_COLUMN]],
            }
        )
    placeholder = 0.0 if task.label_names is None else 0
    return Dataset.from_dict(
        {column: texts[column] for column in task.text_columns} | {"label": [placeholder] * len(texts)}
    )


def transfer_examples(
    task, transfer_file: str | Path | None = None, train_remainder: bool = False
) -> Dataset:
    """The transfer set, tokenized like the training set: the file's text and/or the training remainder.

    Fails with one line before any model work: an unreadable or empty file, or a remainder that
    does not exist because the training split was not cut.
    """
    raw = raw_transfer_examples(task, transfer_file, train_remainder)
    return raw.map(
        task.featurize, batched=True, remove_columns=raw.column_names, desc="Tokenizing the transfer set"
    )


def raw_transfer_examples(
    task, transfer_file: str | Path | None = None, train_remainder: bool = False
) -> Dataset:
    """The transfer set as raw examples of the task's shape (placeholder labels), before tokenization:
    a student with its own tokenizer pairs them with the teacher's tokens (`hfkdq.data.paired`)."""
    if task.featurize is None:
        raise ValueError("transfer data needs a task that can tokenize raw examples")
    parts = []
    if transfer_file is not None:
        if task.head == "token":
            parts.append(Dataset.from_dict({TOKENS_COLUMN: read_ner_transfer(transfer_file)}))
        else:
            parts.append(Dataset.from_dict(read_glue_transfer(transfer_file, task.text_columns)))
    if train_remainder:
        if task.train_remainder is None or len(task.train_remainder) == 0:
            raise TransferFileError(
                "--transfer_train_remainder: nothing remains of the training split; pass --max_train_samples "
                "below the split's size so that the examples it cuts become transfer data"
            )
        parts.append(task.train_remainder)
    if not parts:
        raise ValueError("transfer_examples needs a transfer file or train_remainder=True")
    return _raw_examples(concatenate_datasets(parts) if len(parts) > 1 else parts[0], task)


def check_transfer_ratio(ratio: float) -> None:
    """A finite ratio above 0, checked before any model work (0 would silently drop the transfer data)."""
    if not (ratio > 0 and math.isfinite(ratio)):
        raise ValueError(
            f"--transfer_ratio must be a finite number > 0 (transfer examples per label), got {ratio}"
        )


def mix_transfer(labelled: Dataset, transfer: Dataset, ratio: float, seed: int = 0) -> Dataset:
    """Labelled examples (gold) plus up to ``ratio`` x as many transfer examples (``label_is_gold`` 0)."""
    check_transfer_ratio(ratio)
    wanted = min(len(transfer), int(round(ratio * len(labelled))))
    if wanted < len(transfer):
        chosen = np.random.default_rng(seed).choice(len(transfer), size=wanted, replace=False)
        transfer = transfer.select(sorted(chosen.tolist()))
    keep = [column for column in labelled.column_names if column in transfer.column_names]
    gold = labelled.select_columns(keep).add_column(LABEL_IS_GOLD, [1] * len(labelled))
    unlabeled = transfer.select_columns(keep).add_column(LABEL_IS_GOLD, [0] * len(transfer))
    return concatenate_datasets([gold, unlabeled.cast(gold.features)])
