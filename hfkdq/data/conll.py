"""Read CoNLL-style NER files into the same `datasets` shape the Hub's NER datasets have.

Local files and Hub datasets must reach the trainer through one code path, so both end up as
`tokens: Sequence(string)` + `ner_tags: Sequence(ClassLabel)` with IOB2 tags: seqeval scores IOB2, and
the label ids a model is trained on must mean the same thing for every split.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import datasets

TOKENS_COLUMN = "tokens"
TAGS_COLUMN = "ner_tags"
SCHEMES = ("auto", "iob1", "iob2")
DOCSTART = "-DOCSTART-"

_TAG_PATTERN = re.compile(r"^(?:O|[BI]-(?P<type>\S+))$")
_FIX_SCHEME = "expected 'O' or 'B-TYPE'/'I-TYPE' (IOB1 or IOB2); convert IOBES/BILOU files (S-, E-, U-, L- tags) to IOB2 first"


class CoNLLFormatError(ValueError):
    """A CoNLL file that cannot be read; the message names `file:line` and how to fix the line."""

    def __init__(self, path: str | PathLike[str], line: int, problem: str, fix: str) -> None:
        self.path = str(path)
        self.line = line
        super().__init__(f"{self.path}:{line}: {problem}; {fix}")


@dataclass(frozen=True)
class _Sentence:
    tokens: list[str]
    tags: list[str]
    lines: list[int]


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; valid schemes: {', '.join(SCHEMES)}")


def _split_columns(line: str) -> list[str]:
    """Tab-separated lines keep spaces inside a token (BTC has tokens like 'ke s'); otherwise split on spaces."""
    if "\t" in line:
        return [field.strip() for field in line.split("\t")]
    return line.split()


def _entity_type(tag: str) -> str | None:
    return None if tag == "O" else tag[2:]


def _to_iob2(sentence: _Sentence, path: str, scheme: str) -> _Sentence:
    """Make every entity start with B-: the identity on valid IOB2, the standard conversion for IOB1.

    An I-X begins an entity when the tag before it is O or of another type (or it opens the sentence).
    With scheme="iob2" such a tag is an error rather than something to repair, because it means the file
    is not the IOB2 its caller declared (often an IOB1 file under the wrong name).
    """
    tags: list[str] = []
    previous = "O"
    for tag, line in zip(sentence.tags, sentence.lines, strict=True):
        if tag.startswith("I-") and _entity_type(previous) != tag[2:]:
            if scheme == "iob2":
                raise CoNLLFormatError(
                    path,
                    line,
                    f"tag {tag!r} begins an entity, which IOB2 forbids (it follows {previous!r})",
                    "pass scheme='iob1' or scheme='auto' to convert IOB1 tags, or fix the tag to 'B-'",
                )
            tag = "B-" + tag[2:]
        tags.append(tag)
        previous = tag
    return _Sentence(sentence.tokens, tags, sentence.lines)


def _parse_conll(path: str | PathLike[str], scheme: str) -> list[_Sentence]:
    """Sentences of a CoNLL file, tags already IOB2; an empty list when the file holds none."""
    _check_scheme(scheme)
    sentences: list[_Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []

    def flush() -> None:
        if tokens:
            sentences.append(_to_iob2(_Sentence(list(tokens), list(tags), list(lines)), str(path), scheme))
            tokens.clear()
            tags.clear()
            lines.clear()

    with open(path, "rb") as handle:
        for number, raw_bytes in enumerate(handle, start=1):
            try:
                # utf-8-sig on the first line: a byte-order mark is not part of the first token
                raw = raw_bytes.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise CoNLLFormatError(
                    path,
                    number,
                    f"not UTF-8 text (byte {raw_bytes[error.start]:#04x} at column {error.start + 1})",
                    "convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8",
                ) from None
            line = raw.rstrip("\r\n")
            if not line.strip():
                flush()
                continue
            columns = _split_columns(line)
            if columns[0] == DOCSTART:
                flush()
                continue
            if len(columns) < 2 or not columns[-1]:
                raise CoNLLFormatError(
                    path,
                    number,
                    f"expected at least 2 columns (token ... tag), got {line!r}",
                    "separate the token and its tag with a space or a tab, and sentences with a blank line",
                )
            tag = columns[-1]
            if not _TAG_PATTERN.match(tag):
                raise CoNLLFormatError(path, number, f"unknown tag scheme in tag {tag!r}", _FIX_SCHEME)
            tokens.append(columns[0])
            tags.append(tag)
            lines.append(number)
    flush()
    return sentences


def ner_label_names(tags: Iterable[str]) -> list[str]:
    """Label list for a set of IOB tags: "O", then "B-T", "I-T" per entity type T in alphabetical order.

    A fixed order makes label ids reproducible across runs and machines, and both B- and I- exist for
    every type so that all-subword labelling (B-X -> I-X) always has an I- id to map to.
    """
    types: set[str] = set()
    for tag in tags:
        match = _TAG_PATTERN.match(tag)
        if not match:
            raise ValueError(f"unknown tag scheme in tag {tag!r}: {_FIX_SCHEME}")
        if match["type"]:
            types.add(match["type"])
    return ["O"] + [f"{prefix}-{kind}" for kind in sorted(types) for prefix in ("B", "I")]


def _features(label_names: list[str]) -> datasets.Features:
    return datasets.Features(
        {
            TOKENS_COLUMN: datasets.Sequence(datasets.Value("string")),
            TAGS_COLUMN: datasets.Sequence(datasets.ClassLabel(names=label_names)),
        }
    )


def _to_dataset(sentences: list[_Sentence], label_names: list[str], path: str) -> datasets.Dataset:
    ids = {name: index for index, name in enumerate(label_names)}
    tag_ids: list[list[int]] = []
    for sentence in sentences:
        for tag, line in zip(sentence.tags, sentence.lines, strict=True):
            if tag not in ids:
                raise CoNLLFormatError(
                    path,
                    line,
                    f"tag {tag!r} is not among the known labels {label_names}",
                    "add it to label_names, or leave label_names=None to derive the labels from the files",
                )
        tag_ids.append([ids[tag] for tag in sentence.tags])
    columns = {TOKENS_COLUMN: [sentence.tokens for sentence in sentences], TAGS_COLUMN: tag_ids}
    return datasets.Dataset.from_dict(columns, features=_features(label_names))


def _empty_split_error(path: str, split: str | None = None) -> ValueError:
    where = f"split {split!r} ({path})" if split else path
    return ValueError(
        f"empty split: {where} holds no sentences; "
        "a CoNLL file needs 'token ... tag' lines with a blank line between sentences"
    )


def read_conll(
    path: str | PathLike[str], scheme: str = "auto", label_names: list[str] | None = None
) -> datasets.Dataset:
    """Read one CoNLL NER file (token = first column, tag = last column) as an IOB2 `datasets.Dataset`.

    `scheme="auto"` and `"iob1"` convert IOB1 to IOB2 (a no-op on IOB2 files); `"iob2"` rejects an I-X
    that begins an entity. `-DOCSTART-` lines are skipped. With `label_names=None` the labels come from
    this file via `ner_label_names`; pass them to keep ids identical across files.
    """
    sentences = _parse_conll(path, scheme)
    if not sentences:
        raise _empty_split_error(str(path))
    if label_names is None:
        label_names = ner_label_names(tag for sentence in sentences for tag in sentence.tags)
    return _to_dataset(sentences, list(label_names), str(path))


def label_names_of(dataset: datasets.Dataset | datasets.DatasetDict) -> list[str]:
    """The `ner_tags` ClassLabel names of a dataset (of its first split for a DatasetDict)."""
    if isinstance(dataset, datasets.DatasetDict):
        if not dataset:
            raise ValueError("the DatasetDict has no splits, so it has no label names")
        dataset = next(iter(dataset.values()))
    feature = dataset.features.get(TAGS_COLUMN)
    inner = getattr(feature, "feature", None)
    if not isinstance(inner, datasets.ClassLabel):
        raise ValueError(
            f"column {TAGS_COLUMN!r} must be a sequence of ClassLabel (got {feature!r}); "
            "NER datasets need the tag names to decode label ids"
        )
    return list(inner.names)


def _check_hub_split(split: str, dataset: datasets.Dataset, name: str) -> None:
    missing = [column for column in (TOKENS_COLUMN, TAGS_COLUMN) if column not in dataset.column_names]
    if missing:
        raise ValueError(
            f"dataset {name!r} split {split!r} lacks column(s) {missing} (has {dataset.column_names}); "
            f"NER needs {TOKENS_COLUMN!r} (list of words) and {TAGS_COLUMN!r} (list of ClassLabel tags)"
        )
    names = label_names_of(dataset)
    unknown = [label for label in names if not _TAG_PATTERN.match(label)]
    if unknown:
        raise ValueError(f"dataset {name!r} has labels {unknown} in an unknown tag scheme: {_FIX_SCHEME}")
    if len(dataset) == 0:
        raise ValueError(f"empty split: dataset {name!r} split {split!r} holds no examples")


def _load_hub(name: str, config: str | None) -> datasets.DatasetDict:
    loaded = datasets.load_dataset(name, config)
    if not isinstance(loaded, datasets.DatasetDict):
        raise ValueError(f"dataset {name!r} did not load as a DatasetDict of splits (got {type(loaded)})")
    for split, dataset in loaded.items():
        _check_hub_split(split, dataset, name)
    return datasets.DatasetDict(
        {split: dataset.select_columns([TOKENS_COLUMN, TAGS_COLUMN]) for split, dataset in loaded.items()}
    )


def _load_files(data_files: Mapping[str, str | PathLike[str]], scheme: str) -> datasets.DatasetDict:
    if not data_files:
        raise ValueError("data_files is empty; map split names to CoNLL files, e.g. {'train': 'train.txt'}")
    parsed = {split: _parse_conll(path, scheme) for split, path in data_files.items()}
    for split, sentences in parsed.items():
        if not sentences:
            raise _empty_split_error(str(data_files[split]), split)
    label_names = ner_label_names(
        tag for sentences in parsed.values() for sentence in sentences for tag in sentence.tags
    )
    return datasets.DatasetDict(
        {
            split: _to_dataset(sentences, label_names, str(data_files[split]))
            for split, sentences in parsed.items()
        }
    )


def load_ner_dataset(
    data_files: Mapping[str, str | PathLike[str]] | None = None,
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    scheme: str = "auto",
) -> datasets.DatasetDict:
    """Splits of an NER dataset, from local CoNLL files or the Hub, as `tokens` + `ner_tags` (ClassLabel).

    Local splits share one label list (the union over all files), so an entity type that appears only
    in the test file still has an id the model's head knows. `scheme` applies to local files; a Hub
    dataset must already carry `tokens` and IOB `ner_tags` ClassLabel names.
    """
    _check_scheme(scheme)
    if (data_files is None) == (dataset_name is None):
        raise ValueError("pass exactly one of data_files (local CoNLL files) or dataset_name (a Hub dataset)")
    if dataset_name is not None:
        return _load_hub(dataset_name, dataset_config)
    if not isinstance(data_files, Mapping):
        raise ValueError(f"data_files must map split names to files, e.g. {{'train': {str(data_files)!r}}}")
    return _load_files({split: Path(path) for split, path in data_files.items()}, scheme)
