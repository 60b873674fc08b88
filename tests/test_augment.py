"""Augmented views keep NER tags on their words, are fresh each epoch, and mark GLUE views as not gold."""

import numpy as np
import pytest
import torch
from conftest import tiny_ner_task

from hfkdq.augment import (
    AUGMENTATIONS,
    LABEL_IS_GOLD,
    AugmentationContext,
    augmented_training_set,
    ner_context,
    parse_augmentations,
)
from hfkdq.data.conll import TAGS_COLUMN, TOKENS_COLUMN

NER_NAMES = [name for name, augmentation in AUGMENTATIONS.items() if augmentation.head == "token"]


@pytest.fixture(scope="module")
def task(minilm_tokenizer):
    return tiny_ner_task(minilm_tokenizer, "btc", train_sentences=200, eval_sentences=8)


@pytest.fixture(scope="module")
def context(task, minilm_tokenizer):
    return ner_context(task.raw_train, minilm_tokenizer.mask_token, rate=0.5)


def _mentions(tokens, tags):
    """(type, words) of every mention, from IOB2 tag names."""
    found = []
    for token, tag in zip(tokens, tags, strict=True):
        if tag.startswith("B-"):
            found.append((tag[2:], [token]))
        elif tag.startswith("I-"):
            assert found and found[-1][0] == tag[2:], f"I-{tag[2:]} does not continue a mention"
            found[-1][1].append(token)
    return found


@pytest.mark.parametrize("name", NER_NAMES)
def test_ner_views_keep_valid_iob2_tags_on_their_words(name, task, context):
    augmentation = AUGMENTATIONS[name]
    names = context.label_names
    for index in range(len(task.raw_train)):
        example = task.raw_train[index]
        original_tags = [names[tag] for tag in example[TAGS_COLUMN]]
        original = _mentions(example[TOKENS_COLUMN], original_tags)
        view = augmentation.function(dict(example), context, np.random.default_rng(index))
        tags = [names[tag] for tag in view[TAGS_COLUMN]]
        assert len(view[TOKENS_COLUMN]) == len(tags)
        mentions = _mentions(view[TOKENS_COLUMN], tags)  # asserts IOB2 validity
        assert [kind for kind, _ in sorted(mentions)] == [kind for kind, _ in sorted(original)]
        if name != "replace_mentions":  # every other view keeps each mention's words
            assert sorted(mentions) == sorted(original)
        if name in ("mask_o", "replace_o"):
            assert tags == original_tags
            changed = [
                i
                for i, (a, b) in enumerate(zip(example[TOKENS_COLUMN], view[TOKENS_COLUMN], strict=True))
                if a != b
            ]
            assert all(original_tags[i] == "O" for i in changed), "only O words are rewritten"


def test_views_are_fresh_each_draw_reproducible_and_tokenized_like_the_originals(task, minilm_tokenizer):
    first = augmented_training_set(task, minilm_tokenizer, "all", probability=1.0, seed=3)
    second = augmented_training_set(task, minilm_tokenizer, "all", probability=1.0, seed=3)
    draws = [[first[i]["input_ids"] for i in range(40)] for _ in range(2)]
    assert draws[0] != draws[1], "each epoch draws new views"
    assert [second[i]["input_ids"] for i in range(40)] == draws[0], "same seed, same views"
    never = augmented_training_set(task, minilm_tokenizer, "all", probability=1e-9, seed=3)
    for index in range(10):
        expected = task.train_dataset[index]
        assert never[index]["input_ids"] == expected["input_ids"]
        assert never[index]["labels"] == expected["labels"]


def test_glue_views_are_marked_not_gold_and_cross_entropy_skips_them():
    from hfkdq.loss_terms import DistillationBatch, ce_term

    context = AugmentationContext(mask_token="[MASK]", rate=1.0, text_columns=("sentence",))
    view = AUGMENTATIONS["mask_words"].function(
        {"sentence": "a fine film", "label": 1}, context, np.random.default_rng(0)
    )
    assert view["sentence"] == "[MASK] [MASK] [MASK]" and not AUGMENTATIONS["mask_words"].keeps_gold
    logits = torch.tensor([[2.0, -2.0], [0.0, 0.0]])
    labels = torch.tensor([1, 0])
    batch = dict(
        student_logits=logits,
        labels=labels,
        token_mask=None,
        attention_mask=None,
        token_level=False,
        is_regression=False,
        num_items=2,
        temperature=1.0,
        hidden_loss="mse",
    )
    only_second = ce_term(DistillationBatch(**batch, label_is_gold=torch.tensor([0, 1])))
    assert only_second.item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits[1:], labels[1:]).item() / 2
    )


def test_glue_training_set_carries_the_gold_flag(minilm_tokenizer):
    from datasets import Dataset

    from hfkdq.tasks import TaskData
    from hfkdq.tasks.glue import _featurize

    raw = Dataset.from_dict({"sentence": ["a fine film", "dull"] * 4, "label": [1, 0] * 4})
    task = TaskData(
        features=None,
        label_names=["negative", "positive"],
        head="sequence",
        data_collator=None,
        compute_metrics=None,
        main_metric="accuracy",
        raw_train=raw,
        text_columns=("sentence",),
        featurize=lambda batch: _featurize(batch, minilm_tokenizer, ("sentence",), 32),
    )
    views = augmented_training_set(task, minilm_tokenizer, "mask_words,ngram", probability=1.0)
    assert all(views[i][LABEL_IS_GOLD] == 0 and views[i]["labels"] in (0, 1) for i in range(len(views)))


@pytest.mark.parametrize(
    ("spec", "head", "message"),
    [
        ("mask_words", "token", "does not fit a token"),
        ("rotate", "token", "unknown augmentation"),
        (",", "token", "names no"),
    ],
)
def test_bad_augmentation_names_fail_with_the_choices(spec, head, message):
    with pytest.raises(ValueError, match=message):
        parse_augmentations(spec, head)
