"""GLUE loaders: Hub splits or local files -> one schema, from the task registry in `hfkdq.glue_tasks`.

Whatever the source (the Hub's `nyu-mll/glue`, the original GLUE TSV files, CSV or JSON lines),
`load_glue_dataset` returns the same columns -- the task's text columns plus `label` (a `ClassLabel`
with the registry's names, or a float for STS-B) -- so everything downstream is source-agnostic.

Local files are read with the standard `csv`/`json` modules rather than `load_dataset("csv")`:
GLUE sentences contain quote characters, so TSVs must be read with quoting disabled; every field must
stay a string (pandas would turn a sentence such as "NA" into a float NaN); and the files are small
enough that Arrow caching buys nothing.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

# The registry is re-exported (`x as x`) for code that still imports it from here (hfkdq.metrics.glue).
from hfkdq.glue_tasks import GLUE_TASKS as GLUE_TASKS
from hfkdq.glue_tasks import GlueTask as GlueTask
from hfkdq.glue_tasks import get_glue_task as get_glue_task

GLUE_HUB_IDS = ("nyu-mll/glue", "glue")
"""Hub ids of the GLUE benchmark; with these the task's `hub_config` is passed as the config name."""

UNLABELLED = -1
"""Label of an unlabelled example (GLUE test splits), as on the Hub."""


def glue_features(task: GlueTask | str) -> Features:
    """Arrow schema of a loaded split: string text columns, then the label (class ids or a float score)."""
    task = get_glue_task(task)
    label = Value("float32") if task.label_names is None else ClassLabel(names=list(task.label_names))
    return Features({**{column: Value("string") for column in task.text_columns}, "label": label})


def glue_eval_splits(task: GlueTask | str, dataset: DatasetDict) -> list[str]:
    """Splits to evaluate on: the task's official ones that are present, else any `validation*` split.

    Falls back so that an MNLI run given a single `validation` file still evaluates.
    """
    task = get_glue_task(task)
    official = [split for split in task.eval_splits if split in dataset]
    return official or [split for split in dataset if split.startswith("validation")]


# ----------------------------------------------------------------------------------------------------
# Loading


def load_glue_dataset(
    task: GlueTask | str,
    data_files: Mapping[str, str] | None = None,
    dataset_name: str | None = None,
    *,
    dataset_config_name: str | None = None,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
) -> DatasetDict:
    """Load a GLUE task from local files (split -> path) or the Hub, in the registry's schema.

    Local files are chosen by extension: `.tsv` (original GLUE layout, quoting disabled), `.csv`,
    `.json`/`.jsonl` (JSON lines, or one JSON array). Without `data_files` the Hub is used
    (`nyu-mll/glue` unless `dataset_name` names another dataset). `text_columns` / `label_column` name
    the columns of one's own files; texts are renamed to the task's columns. A split whose name
    contains "test" may lack labels (they become -1); anywhere else a missing label is an error.
    """
    task = get_glue_task(task)
    if text_columns is not None:
        text_columns = _check_text_column_override(task, text_columns)
    if data_files and dataset_name:
        raise ValueError("Pass either data_files (local files) or dataset_name (a Hub dataset), not both.")
    if data_files:
        splits = {
            split: _standardise(
                _read_table(path, task, expect_header=text_columns is not None),
                task,
                split,
                source=str(path),
                text_columns=text_columns,
                label_column=label_column,
            )
            for split, path in data_files.items()
        }
        return DatasetDict(splits)
    return _load_from_hub(
        task, dataset_name or GLUE_HUB_IDS[0], dataset_config_name, text_columns, label_column
    )


def _check_text_column_override(task: GlueTask, text_columns: Sequence[str]) -> tuple[str, ...]:
    if isinstance(text_columns, str):
        text_columns = (text_columns,)
    text_columns = tuple(text_columns)
    if len(text_columns) != len(task.text_columns):
        kind = "a pair of texts" if task.is_pair else "a single text"
        raise ValueError(
            f"GLUE task {task.name!r} classifies {kind} ({', '.join(task.text_columns)}), so it needs "
            f"{len(task.text_columns)} text column(s), but {len(text_columns)} were given: {list(text_columns)}."
        )
    return text_columns


def _load_from_hub(
    task: GlueTask,
    dataset_name: str,
    config_name: str | None,
    text_columns: tuple[str, ...] | None,
    label_column: str | None,
) -> DatasetDict:
    """Download (or read from the Hub cache) and bring each split into the registry's schema."""
    from datasets import load_dataset

    if config_name is None and dataset_name.lower() in GLUE_HUB_IDS:
        config_name = task.hub_config
    raw = load_dataset(dataset_name, config_name)
    splits = {}
    for split, data in raw.items():
        source = f"{dataset_name} ({config_name}) [{split}]" if config_name else f"{dataset_name} [{split}]"
        if text_columns is None and label_column is None and _already_standard(data, task):
            splits[split] = data.select_columns([*task.text_columns, "label"]).cast(glue_features(task))
        else:
            columns = data.to_dict()
            label_feature = data.features.get(label_column or "label")
            if isinstance(label_feature, ClassLabel) and label_feature.names != list(task.label_names or ()):
                _class_ids_to_names(columns, label_column or "label", label_feature, task)
            splits[split] = _standardise(columns, task, split, source, text_columns, label_column)
    return DatasetDict(splits)


def _already_standard(data: Dataset, task: GlueTask) -> bool:
    """Whether a Hub split already has the registry's columns and label encoding (the common case)."""
    if any(column not in data.column_names for column in (*task.text_columns, "label")):
        return False
    label = data.features["label"]
    if task.label_names is None:
        return isinstance(label, Value) and label.dtype.startswith("float")
    return isinstance(label, ClassLabel) and label.names == list(task.label_names)


def _class_ids_to_names(columns: dict[str, list], column: str, feature: ClassLabel, task: GlueTask) -> None:
    """Re-express another dataset's class ids as names when it uses the same names in another order."""
    if set(feature.names) == set(task.label_names or ()):
        columns[column] = [feature.int2str(value) if value >= 0 else value for value in columns[column]]


def _read_text(path: Path) -> str:
    """The file as text; bytes that are not UTF-8 are refused with the file and line (a BOM is dropped)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{path}:{line}: not UTF-8 text (byte {raw[error.start]:#04x}); convert the file to UTF-8, "
            "e.g. iconv -f latin1 -t utf-8"
        ) from None


def _read_table(path: str | Path, task: GlueTask, expect_header: bool = False) -> dict[str, list[Any]]:
    """Columns of one local file, every value as it is in the file (strings for TSV/CSV)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GLUE data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv"):
        dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if suffix == ".tsv" else {}
        reader = csv.reader(io.StringIO(_read_text(path), newline=""), **dialect)
        rows, lines = [], []
        for row in reader:
            if any(cell.strip() for cell in row):  # blank and whitespace-only lines are not rows
                rows.append(row)
                lines.append(reader.line_num)
        if not rows:
            raise ValueError(f"{path}: the file is empty.")
        header, body, body_lines = rows[0], rows[1:], lines[1:]
        if not expect_header and _is_headerless(header, task):
            header, body, body_lines = list(task.headerless_columns or ()), rows, lines
        width = len(header)
        for index, (row, line) in enumerate(zip(body, body_lines, strict=True)):
            if len(row) > width and not any(cell.strip() for cell in row[width:]):
                body[index] = row = row[:width]  # trailing separators carry nothing
            if len(row) != width:
                separator = "tab" if suffix == ".tsv" else "comma"
                raise ValueError(
                    f"{path}:{line}: expected {width} {separator}-separated columns ({', '.join(header)}), "
                    f"got {len(row)}; a text holding a {separator} must be quoted (CSV) or have it removed (TSV)"
                )
        return {name: [row[i] for row in body] for i, name in enumerate(header)}
    if suffix in (".json", ".jsonl"):
        return _read_json_records(path)
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use .tsv, .csv, .json or .jsonl.")


def _is_headerless(first_row: list[str], task: GlueTask) -> bool:
    """CoLA's original train/dev TSVs start with data: a first row naming no known column is data."""
    if task.headerless_columns is None or len(first_row) != len(task.headerless_columns):
        return False
    known = {*task.text_columns, "label", *(alias for _, alias in task.column_aliases)}
    return not known.intersection(first_row)


def _read_json_records(path: Path) -> dict[str, list[Any]]:
    text = _read_text(path)
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg}).") from None
        lines = None
    else:
        records, lines = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            lines.append(number)
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno}); JSON lines need "
                    "one complete object per line"
                ) from None
    if not all(isinstance(record, dict) for record in records):
        raise ValueError(f"{path}: every JSON record must be an object mapping column names to values.")
    names = list(dict.fromkeys(name for record in records for name in record))
    columns = {name: [record.get(name) for record in records] for name in names}
    columns[ROW_PLACES] = (
        [f"{path}:{line}" for line in lines]
        if lines is not None
        else [f"{path}: record {index}" for index in range(1, len(records) + 1)]
    )
    return columns


ROW_PLACES = "\x00place"
"""A column no file can have: where each JSON record is (file:line), for messages about one row."""


def _check_texts(columns: Mapping[str, list[Any]], column: str, source: str) -> None:
    """Every text of `column` is a string: JSON may hold null, numbers or lists where text belongs,
    which would otherwise train as "" or "None" without a word."""
    for index, value in enumerate(columns[column]):
        if not isinstance(value, str):
            places = columns.get(ROW_PLACES)
            where = places[index] if places else f"{source}: row {index + 1}"
            raise ValueError(
                f"{where}: {column!r} is {json.dumps(value, default=str)}, not text; every {column!r} must be "
                "a string: fix or drop that row"
            )


def _standardise(
    columns: Mapping[str, list[Any]],
    task: GlueTask,
    split: str,
    source: str,
    text_columns: tuple[str, ...] | None,
    label_column: str | None,
) -> Dataset:
    """Rename, validate and encode one split's columns into the registry's schema."""
    available = [column for column in columns if column != ROW_PLACES]
    sources = text_columns or tuple(
        _find_column(column, available, task, source) for column in task.text_columns
    )
    for column in sources:
        if column not in columns:
            _missing_column(column, available, task, source)
    label_source = label_column or _find_optional_column("label", available, task)
    is_test = "test" in split.lower()
    if label_source is None or label_source not in columns:
        if label_column is not None or not is_test:
            _missing_column(label_column or "label", available, task, source)
        labels: list[Any] = [UNLABELLED] * (len(columns[sources[0]]) if sources else 0)
    else:
        labels = _encode_labels(columns[label_source], task, source, allow_unlabelled=is_test)
    for column in sources:
        _check_texts(columns, column, source)
    data = {target: list(columns[column]) for target, column in zip(task.text_columns, sources, strict=True)}
    data["label"] = labels
    return Dataset.from_dict(data, features=glue_features(task))


def _find_optional_column(column: str, available: Sequence[str], task: GlueTask) -> str | None:
    if column in available:
        return column
    return next((alias for alias in task.aliases_of(column) if alias in available), None)


def _find_column(column: str, available: Sequence[str], task: GlueTask, source: str) -> str:
    found = _find_optional_column(column, available, task)
    if found is None:
        _missing_column(column, available, task, source)
    return found  # type: ignore[return-value]


def _missing_column(column: str, available: Sequence[str], task: GlueTask, source: str) -> None:
    aliases = task.aliases_of(column)
    also = f" (or {', '.join(repr(alias) for alias in aliases)})" if aliases else ""
    raise ValueError(
        f"{source}: GLUE task {task.name!r} needs a column {column!r}{also}, but the file has columns "
        f"{list(available)}. Name your own columns with text_columns= / label_column= "
        f"(--text_columns / --label_column in the recipe)."
    )


def _encode_labels(values: Sequence[Any], task: GlueTask, source: str, allow_unlabelled: bool) -> list[Any]:
    """Class ids (from ids or names) or float scores; a value outside the task's label set is an error."""
    encode = _float_label if task.label_names is None else _class_id_encoder(task.label_names)
    encoded, bad = [], []
    for row, value in enumerate(values):
        label = encode(value)
        if label is None and allow_unlabelled and _is_blank_or_unlabelled(value):
            label = float(UNLABELLED) if task.label_names is None else UNLABELLED
        if label is None:
            bad.append((row, value))
        encoded.append(label)
    if bad:
        row, value = bad[0]
        expected = (
            "a number (a similarity score)"
            if task.label_names is None
            else f"one of {list(task.label_names)} or an id 0..{len(task.label_names) - 1}"
        )
        others = sorted({str(other) for _, other in bad[1:]} - {str(value)})
        more = f" Other bad values: {others[:5]}." if others else ""
        raise ValueError(
            f"{source}: label {value!r} (data row {row + 1}) is not a valid {task.name!r} label; expected "
            f"{expected}. {len(bad)} row(s) affected.{more}"
        )
    return encoded


def _is_blank_or_unlabelled(value: Any) -> bool:
    return value is None or str(value).strip() in ("", str(UNLABELLED))


def _class_id_encoder(label_names: tuple[str, ...]):
    lookup = {name: index for index, name in enumerate(label_names)}
    lookup.update({str(index): index for index in range(len(label_names))})

    def encode(value: Any) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int):
            return value if 0 <= value < len(label_names) else None
        return lookup.get(str(value).strip()) if value is not None else None

    return encode


def _float_label(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return score if math.isfinite(score) else None


# ----------------------------------------------------------------------------------------------------
# Features


def prepare_glue_features(
    dataset: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    task: GlueTask | str,
    max_length: int | None = None,
) -> DatasetDict:
    """Tokenize (truncating, never padding) and keep `labels`: padding is the collator's job, per batch.

    Splits without labels (a "test" split whose labels are all -1) lose the column, so that
    `Trainer.predict` does not feed -1 to the loss.
    """
    task = get_glue_task(task)

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        texts = [batch[column] for column in task.text_columns]
        return tokenizer(*texts, truncation=True, max_length=max_length)

    features = {}
    for split, data in dataset.items():
        missing = [column for column in task.text_columns if column not in data.column_names]
        if missing:
            raise ValueError(
                f"Split {split!r} lacks the {task.name!r} text column(s) {missing}; load it with load_glue_dataset."
            )
        tokenized = data.map(
            tokenize,
            batched=True,
            remove_columns=[column for column in data.column_names if column != "label"],
            desc=f"Tokenizing {task.name} {split}",
        )
        if "label" in tokenized.column_names:
            if "test" in split.lower() and all(label == UNLABELLED for label in tokenized["label"]):
                tokenized = tokenized.remove_columns("label")
            else:
                tokenized = tokenized.rename_column("label", "labels")
        features[split] = tokenized
    return DatasetDict(features)


def glue_data_collator(
    tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None = None
) -> DataCollatorWithPadding:
    """Pad each batch to its own longest example: with `group_by_length`, short sentences stay cheap."""
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
