"""The teacher-output cache: distilling from stored logits equals distilling from the live teacher."""

import pytest
import torch
from conftest import ForwardCounter, tiny_ner_task, tiny_token_models

from hfkdq import DistillationArguments, DistillationTrainer
from hfkdq.teacher_cache import (
    LOGITS_COLUMN,
    StaleTeacherCacheError,
    TeacherOutputCache,
    build_teacher_cache,
)


@pytest.fixture(scope="module")
def task(minilm_tokenizer):
    return tiny_ner_task(minilm_tokenizer, "btc", train_sentences=48, eval_sentences=16)


def _args(tmp_path, name, **overrides):
    settings = dict(
        output_dir=str(tmp_path / name),
        max_steps=4,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=11,
    )
    settings.update(overrides)
    return DistillationArguments(**settings)


def _train(task, tokenizer, args, cache=None):
    teacher, student = tiny_token_models(task.label_names, seed=5)
    counter = ForwardCounter(teacher)
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=task.train_dataset,
        processing_class=tokenizer,
        data_collator=task.data_collator,
        teacher_cache=cache,
    )
    trainer.train()
    return trainer, counter


def _cache_for(task, tmp_path, name="cache", **options):
    teacher, _ = tiny_token_models(task.label_names, seed=5)
    return build_teacher_cache(teacher, task.train_dataset, task.data_collator, tmp_path / name, **options)


def test_distilling_from_the_cache_equals_distilling_from_the_live_teacher(task, minilm_tokenizer, tmp_path):
    cache = _cache_for(task, tmp_path)
    live, live_counter = _train(task, minilm_tokenizer, _args(tmp_path, "live"))
    cached, cached_counter = _train(task, minilm_tokenizer, _args(tmp_path, "cached"), cache=cache.path)
    assert live_counter.calls == 4
    # remove_unused_columns (on by default) kept the cached columns: the teacher never ran.
    assert cached_counter.calls == 0
    live_kd = [entry["loss_kd"] for entry in live.state.log_history if "loss_kd" in entry]
    cached_kd = [entry["loss_kd"] for entry in cached.state.log_history if "loss_kd" in entry]
    assert cached_kd == pytest.approx(live_kd, abs=1e-4)
    for key, value in live.model.state_dict().items():
        torch.testing.assert_close(cached.model.state_dict()[key], value, rtol=0, atol=1e-5)


def test_top_k_covering_every_class_equals_full_logits_and_smaller_k_stays_finite(
    task, minilm_tokenizer, tmp_path
):
    full, _ = _train(task, minilm_tokenizer, _args(tmp_path, "full"), cache=_cache_for(task, tmp_path).path)
    every = _cache_for(task, tmp_path, "every", top_k=len(task.label_names))
    top_every, _ = _train(task, minilm_tokenizer, _args(tmp_path, "every-run"), cache=every.path)
    top_two, counter = _train(
        task,
        minilm_tokenizer,
        _args(tmp_path, "two-run"),
        cache=_cache_for(task, tmp_path, "two", top_k=2).path,
    )
    kd = {
        name: [entry["loss_kd"] for entry in trainer.state.log_history if "loss_kd" in entry]
        for name, trainer in (("full", full), ("every", top_every), ("two", top_two))
    }
    assert kd["every"] == pytest.approx(kd["full"], abs=1e-4)
    assert all(torch.isfinite(torch.tensor(kd["two"]))) and counter.calls == 0


def test_a_cache_built_by_another_teacher_is_refused(task, tmp_path):
    cache = TeacherOutputCache.load(_cache_for(task, tmp_path).path)
    other_teacher, _ = tiny_token_models(task.label_names, seed=6)
    with pytest.raises(StaleTeacherCacheError, match="another teacher"):
        cache.attach(other_teacher, task.train_dataset)


def test_the_same_teacher_saved_and_reloaded_is_accepted(task, tmp_path):
    """The cache is built in one process and used in another that loads the teacher from disk."""
    from transformers import BertForTokenClassification

    cache = TeacherOutputCache.load(_cache_for(task, tmp_path).path)
    teacher, _ = tiny_token_models(task.label_names, seed=5)
    teacher.save_pretrained(tmp_path / "saved-teacher")
    reloaded = BertForTokenClassification.from_pretrained(tmp_path / "saved-teacher")
    assert reloaded.config._name_or_path != teacher.config._name_or_path
    attached = cache.attach(reloaded, task.train_dataset)
    assert LOGITS_COLUMN in attached.column_names


def test_a_cache_built_for_other_examples_is_refused(task, tmp_path):
    cache = _cache_for(task, tmp_path)
    teacher, _ = tiny_token_models(task.label_names, seed=5)
    shuffled = task.train_dataset.select(list(reversed(range(len(task.train_dataset)))))
    with pytest.raises(StaleTeacherCacheError, match="other training examples"):
        cache.attach(teacher, shuffled)
    with pytest.raises(StaleTeacherCacheError, match="holds 48 examples"):
        cache.attach(teacher, task.train_dataset.select(range(10)))


def test_the_cache_is_keyed_per_example_and_stores_real_tokens_only(task, tmp_path):
    from datasets import load_from_disk

    cache = _cache_for(task, tmp_path)
    table = load_from_disk(str(cache.path))
    assert len(table) == len(task.train_dataset)
    lengths = [len(row) for row in table[LOGITS_COLUMN]]
    assert lengths == [len(ids) for ids in task.train_dataset["input_ids"]]
    assert len(set(table["example_key"])) == len(table)


def test_a_directory_that_is_not_a_cache_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a teacher-output cache"):
        TeacherOutputCache.load(tmp_path)
