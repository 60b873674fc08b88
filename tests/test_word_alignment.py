"""Word alignment across tokenizers: every word both models read is scored exactly once on each side."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_wordpiece_tokenizer
from hypothesis import given, settings
from hypothesis import strategies as st

from hfkdq.data.conll import load_ner_dataset
from hfkdq.data.ner_features import tokenize_and_align_labels
from hfkdq.data.word_alignment import (
    NO_POSITION,
    align_words,
    aligned_mask,
    first_token_positions,
    to_student_frame,
)
from hfkdq.resources import btc_files

WORDS = ["Jean-Claude", "Dupont", "found", "unaffable", "Montpellier", "."]


def test_first_token_positions_skip_special_tokens_and_continuations():
    assert first_token_positions([None, 0, 0, 1, 2, 2, None]) == {0: 1, 1: 3, 2: 4}


def test_a_word_either_side_truncated_is_masked_on_both():
    teacher = [None, 0, 0, 1, 2, 2, 2, None]  # reads words 0, 1, 2
    student = [None, 0, 1, 1, None]  # truncated after word 1
    assert align_words(teacher, student) == ([1, 3], [1, 2])
    assert align_words(student, teacher) == ([1, 2], [1, 3])


def test_to_student_frame_moves_each_words_values_to_the_students_first_subtoken():
    teacher_values = torch.arange(2 * 5 * 1, dtype=torch.float).view(2, 5, 1) + 1
    teacher_positions = torch.tensor([[1, 3], [2, NO_POSITION]])
    student_positions = torch.tensor([[2, 4], [1, NO_POSITION]])
    placed = to_student_frame(teacher_values, teacher_positions, student_positions, student_length=6)
    mask = aligned_mask(student_positions, 6)
    assert placed.shape == (2, 6, 1)
    assert placed[0, :, 0].tolist() == [0, 0, 2, 0, 4, 0]
    assert placed[1, :, 0].tolist() == [0, 8, 0, 0, 0, 0]
    assert mask.tolist() == [
        [False, False, True, False, True, False],
        [False, True, False, False, False, False],
    ]


def check_every_word_scored_once(words, teacher_tokenizer, student_tokenizer, max_length=None):
    """Both encodings of `words`, aligned: each word both sides kept once, at its first sub-token."""
    batch = {"tokens": [words], "ner_tags": [[0] * len(words)]}
    teacher = tokenize_and_align_labels(batch, teacher_tokenizer, max_length=max_length)
    student = tokenize_and_align_labels(batch, student_tokenizer, max_length=max_length)
    teacher_ids, student_ids = teacher.word_ids(0), student.word_ids(0)
    teacher_positions, student_positions = align_words(teacher_ids, student_ids)
    kept = sorted({w for w in teacher_ids if w is not None} & {w for w in student_ids if w is not None})
    assert [teacher_ids[p] for p in teacher_positions] == kept
    assert [student_ids[p] for p in student_positions] == kept
    for ids, positions in ((teacher_ids, teacher_positions), (student_ids, student_positions)):
        assert len(set(positions)) == len(positions)
        assert all(ids[p - 1] != ids[p] for p in positions)  # the first sub-token of its word
    # Every scored student position is one its own labels mark (a word's first sub-token).
    labelled = [p for p, label in enumerate(student["labels"][0]) if label != -100]
    assert set(student_positions) <= set(labelled)
    if max_length is None:
        assert kept == list(range(len(words)))
    return teacher_positions, student_positions


def test_cased_and_uncased_wordpiece_split_differently_but_score_each_word_once():
    uncased, cased = tiny_wordpiece_tokenizer(lowercase=True), tiny_wordpiece_tokenizer(lowercase=False)
    teacher_positions, student_positions = check_every_word_scored_once(WORDS, uncased, cased)
    assert teacher_positions != student_positions  # the splits really differ


def test_a_word_the_shorter_side_truncates_is_dropped_on_both():
    uncased, cased = tiny_wordpiece_tokenizer(lowercase=True), tiny_wordpiece_tokenizer(lowercase=False)
    teacher_positions, student_positions = check_every_word_scored_once(WORDS, uncased, cased, max_length=12)
    assert 0 < len(student_positions) < len(WORDS)


word = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,-'é", min_size=1, max_size=14
)


@settings(max_examples=60, deadline=None)
@given(words=st.lists(word, min_size=1, max_size=30), max_length=st.one_of(st.none(), st.integers(3, 40)))
def test_any_sentence_is_scored_once_per_word_on_both_sides(words, max_length):
    check_every_word_scored_once(
        words,
        tiny_wordpiece_tokenizer(lowercase=True),
        tiny_wordpiece_tokenizer(lowercase=False, id_offset=4),
        max_length=max_length,
    )


def _btc_sentences(count=200):
    return load_ner_dataset(data_files=btc_files())["train"]["tokens"][:count]


def test_real_bert_uncased_against_a_cased_wordpiece_on_tweets(minilm_tokenizer):
    cased = tiny_wordpiece_tokenizer(lowercase=False)
    for words in _btc_sentences():
        check_every_word_scored_once(words, minilm_tokenizer, cased, max_length=48)


def test_mpnet_against_bert_uncased_on_tweets(minilm_tokenizer):
    from transformers import AutoTokenizer

    from hfkdq.resources.mpnet import assembled_mpnet_path

    path = assembled_mpnet_path()
    if path is None:
        pytest.skip("needs the MPNet-base teacher in ~/.cache/hfkdq (make teacher-mpnet)")
    mpnet = AutoTokenizer.from_pretrained(str(path))
    for words in _btc_sentences():
        check_every_word_scored_once(words, mpnet, minilm_tokenizer)
        check_every_word_scored_once(words, minilm_tokenizer, mpnet, max_length=24)
