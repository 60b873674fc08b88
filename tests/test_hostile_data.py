"""Hostile NER data, property-based: whatever the bytes look like, a file is either read exactly or
refused with its name and line, and no tag ever moves onto another word or vanishes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities

from hfkdq.data.conll import CoNLLFormatError, read_conll
from hfkdq.data.ner_features import IGNORE_INDEX, tokenize_and_align_labels


def decodes_as_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Tokens: no whitespace (CoNLL splits columns on it), but emoji, other non-BMP characters, zero-width
# and control characters, accents, and characters the WordPiece vocabulary lacks are all fair game.
TOKEN = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Zs", "Zl", "Zp"),
        blacklist_characters="\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85",
    ),
    min_size=1,
    max_size=12,
).filter(lambda token: token.split() == [token] and token != "-DOCSTART-")
ENTITY = st.sampled_from(["PER", "LOC", "ORG", "MISC"])


@st.composite
def sentences(draw, max_words: int = 12):
    """A tagged sentence in valid IOB2: entities of 1-3 words between O words."""
    words, tags = [], []
    while len(words) < draw(st.integers(1, max_words)) or not words:
        if draw(st.booleans()):
            kind, span = draw(ENTITY), draw(st.integers(1, 3))
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (span - 1)
            words += [draw(TOKEN) for _ in range(span)]
        else:
            tags.append("O")
            words.append(draw(TOKEN))
    return words, tags


@st.composite
def conll_files(draw):
    """A CoNLL file of those sentences with every layout a real file may have."""
    corpus = draw(st.lists(sentences(), min_size=1, max_size=5))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    separator = st.sampled_from([" ", "\t", "  ", " \t"])
    blank = st.sampled_from(["", " ", "\t"])  # whitespace-only lines separate sentences too
    chunks = [draw(blank) + newline for _ in range(draw(st.integers(0, 2)))]  # leading blank lines
    for words, tags in corpus:
        for word, tag in zip(words, tags, strict=True):
            chunks.append(f"{word}{draw(separator)}{tag}{newline}")
        chunks += [draw(blank) + newline for _ in range(draw(st.integers(1, 3)))]
    text = "".join(chunks)
    if not draw(st.booleans()):
        text = text.rstrip("\r\n \t")  # no final newline
    bom = "\ufeff" if draw(st.booleans()) else ""
    return corpus, (bom + text).encode("utf-8")


@SETTINGS
@given(conll_files())
def test_any_layout_of_a_valid_file_reads_back_exactly(tmp_path, case):
    corpus, raw = case
    path = tmp_path / "data.conll"
    path.write_bytes(raw)
    data = read_conll(path)
    names = data.features["ner_tags"].feature.names
    assert data["tokens"] == [words for words, _ in corpus]
    assert [[names[i] for i in row] for row in data["ner_tags"]] == [tags for _, tags in corpus]


@SETTINGS
@given(conll_files(), st.integers(0, 10_000), st.sampled_from([b"\xff", b"\xc3", b"\xe9", b"\x80\x80"]))
def test_bytes_that_are_not_utf8_are_refused_with_file_and_line(tmp_path, case, where, bad):
    _, raw = case
    cut = where % (len(raw) + 1)
    corrupted = raw[:cut] + bad + raw[cut:]
    assume(not decodes_as_utf8(corrupted))  # bad bytes that complete a character leave nothing to refuse
    path = tmp_path / "data.conll"
    path.write_bytes(corrupted)
    line = corrupted[:cut].count(b"\n") + 1
    with pytest.raises(CoNLLFormatError, match=rf"data\.conll:{line}: not UTF-8"):
        read_conll(path)


@SETTINGS
@given(sentences(max_words=40), st.integers(8, 64))
def test_alignment_keeps_every_word_tag_on_its_own_word(minilm_tokenizer, sentence, max_length):
    words, tags = sentence
    names = sorted(set(tags) | {"O"})
    ids = [names.index(tag) for tag in tags]

    full = tokenize_and_align_labels(
        {"tokens": [words], "ner_tags": [ids]}, minilm_tokenizer, max_length=4096
    )
    word_ids = full.word_ids(0)
    scored = [
        (word, label)
        for word, label in zip(word_ids, full["labels"][0], strict=True)
        if label != IGNORE_INDEX
    ]
    assert [word for word, _ in scored] == list(range(len(words)))  # one position per word, in order
    assert [label for _, label in scored] == ids  # each word keeps its own tag
    assert get_entities([names[label] for _, label in scored]) == get_entities(tags)

    cut = tokenize_and_align_labels(
        {"tokens": [words], "ner_tags": [ids]}, minilm_tokenizer, max_length=max_length
    )
    kept = [label for label in cut["labels"][0] if label != IGNORE_INDEX]
    assert kept == ids[: len(kept)]  # truncation drops a tail, never shifts a tag


def test_a_100k_token_document_is_read_and_aligned_in_full(tmp_path, minilm_tokenizer):
    words = ["Paris", "is", "big", "."] * 25_000
    tags = ["B-LOC", "O", "O", "O"] * 25_000
    path = tmp_path / "long.conll"
    path.write_text("".join(f"{w} {t}\n" for w, t in zip(words, tags, strict=True)))
    row = read_conll(path)[0]
    assert len(row["tokens"]) == 100_000
    encoding = tokenize_and_align_labels(
        {"tokens": [row["tokens"]], "ner_tags": [row["ner_tags"]]}, minilm_tokenizer, max_length=512
    )
    assert len(encoding["input_ids"][0]) == 512


# GLUE files: TSV (quoting off, as GLUE ships), CSV (quoted as needed) and JSON lines.
SENTENCE = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",), blacklist_characters="\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
    ),
    min_size=1,
    max_size=40,
).filter(lambda text: text.strip() != "" and text == text.strip() and not text.startswith('"'))
ROWS = st.lists(st.tuples(SENTENCE, st.sampled_from([0, 1])), min_size=1, max_size=8)


def _glue_file(kind: str, rows, newline: str, bom: bool, blank_lines: bool) -> bytes:
    import csv
    import io
    import json

    if kind == "jsonl":
        lines = [json.dumps({"sentence": text, "label": label}, ensure_ascii=False) for text, label in rows]
    elif kind == "tsv":  # GLUE's own layout: no quoting at all
        lines = ["sentence\tlabel", *(f"{text}\t{label}" for text, label in rows)]
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["sentence", "label"])
        for text, label in rows:
            writer.writerow([text, label])
        lines = [buffer.getvalue().rstrip("\n")]
    if blank_lines and kind != "csv":
        lines = [line for pair in zip(lines, [""] * len(lines), strict=True) for line in pair]
    text = newline.join(lines) + newline
    return (("\ufeff" if bom else "") + text).encode("utf-8")


@SETTINGS
@given(
    st.sampled_from(["tsv", "csv", "jsonl"]),
    ROWS,
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.booleans(),
)
def test_any_layout_of_a_valid_glue_file_reads_back_exactly(tmp_path, kind, rows, newline, bom, blank_lines):
    from hfkdq.data.glue import load_glue_dataset

    if kind == "csv" and newline == "\r\n":
        newline = "\n"  # CSV quoting of embedded CR is its own matter; the writer's own newline is used
    path = tmp_path / f"train.{kind}"
    path.write_bytes(_glue_file(kind, rows, newline, bom, blank_lines))
    data = load_glue_dataset("sst2", {"train": str(path)})["train"]
    assert list(data["sentence"]) == [text for text, _ in rows]
    assert list(data["label"]) == [label for _, label in rows]


@SETTINGS
@given(st.sampled_from(["tsv", "csv", "jsonl"]), ROWS, st.integers(0, 10_000))
def test_non_utf8_glue_files_are_refused_with_file_and_line(tmp_path, kind, rows, where):
    from hfkdq.data.glue import load_glue_dataset

    raw = _glue_file(kind, rows, "\n", False, False)
    cut = where % (len(raw) + 1)
    corrupted = raw[:cut] + b"\xff" + raw[cut:]
    path = tmp_path / f"train.{kind}"
    path.write_bytes(corrupted)
    line = corrupted[:cut].count(b"\n") + 1
    with pytest.raises(ValueError, match=rf"train\.{kind}:{line}: not UTF-8"):
        load_glue_dataset("sst2", {"train": str(path)})


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "train.tsv",
            "sentence\tlabel\ngood film\t1\nbad\tfilm\t0\n",
            r"train\.tsv:3: expected 2 tab-separated columns",
        ),
        ("train.tsv", "sentence\tlabel\ngood film\n", r"train\.tsv:2: expected 2 tab-separated columns"),
        ("train.csv", "sentence,label\ngood, film,1\n", r"train\.csv:2: expected 2 comma-separated columns"),
        (
            "train.jsonl",
            '{"sentence": "good", "label": 1}\n{"sentence": "bad", \n',
            r"train\.jsonl:2: not valid JSON",
        ),
    ],
)
def test_a_row_that_would_shift_columns_is_refused_with_its_line(tmp_path, name, content, message):
    from hfkdq.data.glue import load_glue_dataset

    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_glue_dataset("sst2", {"train": str(path)})
