"""A student with its own tokenizer: each model reads its own tokens of the same text.

Token tasks compare each word's first sub-token on both sides; sequence tasks compare per-example
logits. The reference losses here are written out word by word with torch's own KL, independently of
the trainer's alignment code.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import ForwardCounter, tiny_bert_config, tiny_ner_task, tiny_wordpiece_tokenizer
from datasets import Dataset, DatasetDict
from transformers import AutoTokenizer, BertForSequenceClassification, BertForTokenClassification

from hfkdq import DistillationArguments, DistillationTrainer
from hfkdq.data.paired import STUDENT_WORD_POSITIONS, TEACHER_WORD_POSITIONS, pair_features
from hfkdq.glue_tasks import get_glue_task
from hfkdq.tasks.glue import glue_task_data
from hfkdq.teacher_cache import build_teacher_cache

TEMPERATURE = 2.0


@pytest.fixture(scope="module")
def cased():
    """A cased WordPiece whose ids are shifted by 4, as MPNet's are against BERT-uncased's."""
    return tiny_wordpiece_tokenizer(lowercase=False, id_offset=4)


@pytest.fixture(scope="module")
def ner(minilm_tokenizer, cased):
    """(teacher task on BERT-uncased, student task on the cased WordPiece, paired training set)."""
    teacher_task = tiny_ner_task(minilm_tokenizer, "btc", train_sentences=48, eval_sentences=16)
    student_task = tiny_ner_task(cased, "btc", train_sentences=48, eval_sentences=16)
    paired = pair_features(teacher_task.raw_train, teacher_task.featurize, student_task.featurize, True)
    return teacher_task, student_task, paired


def _models(num_labels, student_vocab, head=BertForTokenClassification, student_width=32, label_names=None):
    torch.manual_seed(3)
    configs = []
    for layers, width, vocab in ((4, 64, 30522), (2, student_width, student_vocab)):
        config = tiny_bert_config(
            num_labels=num_labels,
            num_layers=layers,
            hidden_size=width,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        config.vocab_size = vocab
        if label_names is not None:
            config.id2label = dict(enumerate(label_names))
            config.label2id = {name: i for i, name in enumerate(label_names)}
        configs.append(config)
    return head(configs[0]), head(configs[1])


def _args(tmp_path, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "run"),
        max_steps=4,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=7,
        temperature=TEMPERATURE,
        ce_weight=0.0,
        kd_weight=1.0,
    )
    settings.update(overrides)
    return DistillationArguments(**settings)


def _trainer(teacher, student, train, tokenizer, collator, args, **kwargs):
    return DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        data_collator=collator,
        **kwargs,
    )


def _loss_on(trainer, rows):
    """The training loss of one batch, collated as the trainer's dataloader collates it."""
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which is not running
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, dict(trainer.data_collator(rows))).item()


def _kl(student_logits, teacher_logits):
    return (
        F.kl_div(
            F.log_softmax(student_logits / TEMPERATURE, -1),
            F.log_softmax(teacher_logits / TEMPERATURE, -1),
            log_target=True,
            reduction="sum",
        )
        * TEMPERATURE**2
    )


def test_the_students_features_are_its_own_tokenization(ner):
    _, student_task, paired = ner
    for column in student_task.train_dataset.column_names:
        assert paired[column] == student_task.train_dataset[column]


def test_token_kd_is_the_mean_kl_over_the_words_both_models_read(ner, minilm_tokenizer, cased, tmp_path):
    teacher_task, student_task, paired = ner
    teacher, student = _models(
        len(teacher_task.label_names), len(cased), label_names=teacher_task.label_names
    )
    trainer = _trainer(teacher, student, paired, cased, student_task.data_collator, _args(tmp_path))
    rows = [paired[index] for index in range(8)]
    loss = _loss_on(trainer, rows)

    per_word = []
    for row in rows:
        with torch.no_grad():
            teacher_logits = teacher(input_ids=torch.tensor([row["teacher_input_ids"]])).logits[0]
            student_logits = student(input_ids=torch.tensor([row["input_ids"]])).logits[0]
        words = list(zip(row[TEACHER_WORD_POSITIONS], row[STUDENT_WORD_POSITIONS], strict=True))
        assert len(words) == len({s for _, s in words}) == len({t for t, _ in words})
        per_word += [_kl(student_logits[s], teacher_logits[t]) for t, s in words]
    assert len(per_word) > 8 * 5
    assert loss == pytest.approx(torch.stack(per_word).mean().item(), rel=1e-5)


def test_cache_loss_equals_live_loss_for_a_cross_tokenizer_student(ner, cased, tmp_path):
    teacher_task, student_task, paired = ner
    teacher, student = _models(
        len(teacher_task.label_names), len(cased), label_names=teacher_task.label_names
    )
    # Built from the teacher's own features: one cache of the text serves any student of this teacher.
    cache = build_teacher_cache(
        teacher, teacher_task.train_dataset, teacher_task.data_collator, tmp_path / "c"
    )
    live = _trainer(teacher, student, paired, cased, student_task.data_collator, _args(tmp_path))
    cached = _trainer(
        teacher, student, paired, cased, student_task.data_collator, _args(tmp_path), teacher_cache=cache
    )
    counter = ForwardCounter(teacher)
    cached_loss = _loss_on(cached, [cached.train_dataset[index] for index in range(8)])
    assert counter.calls == 0
    live_loss = _loss_on(live, [paired[index] for index in range(8)])
    assert counter.calls == 1
    assert cached_loss == pytest.approx(live_loss, rel=1e-5)


def test_the_same_tokenizer_paired_with_itself_gives_todays_losses(ner, minilm_tokenizer, tmp_path):
    teacher_task, _, _ = ner
    same = pair_features(teacher_task.raw_train, teacher_task.featurize, teacher_task.featurize, True)
    rows = list(range(8))
    weights = dict(ce_weight=1.0, kd_weight=1.0, hidden_weight=1.0)
    losses = []
    for train in (teacher_task.train_dataset, same):
        teacher, student = _models(len(teacher_task.label_names), 30522, label_names=teacher_task.label_names)
        trainer = _trainer(
            teacher, student, train, minilm_tokenizer, teacher_task.data_collator, _args(tmp_path, **weights)
        )
        assert trainer.paired == (train is same)
        losses.append(_loss_on(trainer, [train[index] for index in rows]))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_a_cross_tokenizer_student_of_another_width_trains_and_is_saved_with_its_own_tokenizer(
    ner, cased, tmp_path
):
    teacher_task, student_task, paired = ner
    teacher, student = _models(
        len(teacher_task.label_names), len(cased), label_names=teacher_task.label_names
    )
    with torch.no_grad():  # a confident teacher, so that there is something to learn from its logits
        teacher.classifier.weight.mul_(30)
    args = _args(tmp_path, max_steps=16, hidden_weight=1.0)
    trainer = _trainer(teacher, student, paired, cased, student_task.data_collator, args)
    trainer.train()
    kd = [entry["loss_kd"] for entry in trainer.state.log_history if "loss_kd" in entry]
    hidden = [entry["loss_hidden"] for entry in trainer.state.log_history if "loss_hidden" in entry]
    assert len(kd) == len(hidden) == 16
    assert sum(kd[-3:]) < sum(kd[:3]) and sum(hidden[-3:]) < sum(hidden[:3])
    assert len(trainer.model.projections) > 0  # 32 -> 64 wide
    trainer.save_model(str(tmp_path / "student"))
    assert AutoTokenizer.from_pretrained(tmp_path / "student").get_vocab() == cased.get_vocab()
    metrics = trainer.evaluate(student_task.features["validation"])
    assert "eval_loss" in metrics


def test_the_attention_loss_across_tokenizers_is_refused_before_any_work(ner, cased, tmp_path):
    teacher_task, student_task, paired = ner
    teacher, student = _models(
        len(teacher_task.label_names), len(cased), label_names=teacher_task.label_names
    )
    counter = ForwardCounter(teacher)
    with pytest.raises(ValueError, match="attention maps, which do not line up across two tokenizers"):
        _trainer(
            teacher, student, paired, cased, student_task.data_collator, _args(tmp_path, attention_weight=1.0)
        )
    assert counter.calls == 0


def test_one_tokenization_for_two_vocabularies_is_refused_with_the_fix(ner, cased, tmp_path):
    teacher_task, student_task, _ = ner
    teacher, student = _models(
        len(teacher_task.label_names), len(cased), label_names=teacher_task.label_names
    )
    with pytest.raises(ValueError, match="different vocabularies.*pair_features"):
        _trainer(
            teacher, student, student_task.train_dataset, cased, student_task.data_collator, _args(tmp_path)
        )


# ----- sequence tasks -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentences(ner):
    teacher_task, _, _ = ner
    texts = [" ".join(words) for words in teacher_task.raw_train["tokens"]]
    split = Dataset.from_dict({"sentence": texts, "label": [len(t) % 2 for t in texts]})
    return DatasetDict({"train": split, "validation": split.select(range(8))})


def test_sequence_kd_compares_per_example_logits_of_each_models_own_tokens(
    sentences, minilm_tokenizer, cased, tmp_path
):
    task = get_glue_task("sst2")
    teacher_task = glue_task_data(task, sentences, minilm_tokenizer, 64)
    student_task = glue_task_data(task, sentences, cased, 64)
    paired = pair_features(sentences["train"], teacher_task.featurize, student_task.featurize, False)
    assert TEACHER_WORD_POSITIONS not in paired.column_names
    teacher, student = _models(2, len(cased), head=BertForSequenceClassification)
    with torch.no_grad():
        teacher.classifier.weight.mul_(30)
    trainer = _trainer(teacher, student, paired, cased, student_task.data_collator, _args(tmp_path))
    rows = [paired[index] for index in range(8)]
    loss = _loss_on(trainer, rows)
    reference = []
    for row in rows:
        with torch.no_grad():
            teacher_logits = teacher(input_ids=torch.tensor([row["teacher_input_ids"]])).logits[0]
            student_logits = student(input_ids=torch.tensor([row["input_ids"]])).logits[0]
        reference.append(_kl(student_logits, teacher_logits))
    # Padding changes the float rounding of a sequence model's pooled output, not its value.
    assert loss == pytest.approx(torch.stack(reference).mean().item(), rel=1e-4)

    with pytest.raises(
        ValueError, match="hidden-state loss across two tokenizers compares words, and a sequence task"
    ):
        _trainer(
            teacher, student, paired, cased, student_task.data_collator, _args(tmp_path, hidden_weight=1.0)
        )


# ----- the recipe: a pretrained student that brings its own tokenizer ------------------------------


@pytest.fixture(scope="module")
def recipe():
    from conftest import import_script

    return import_script("recipes/distill_bert_ner.py")


@pytest.fixture(scope="module")
def cased_student_dir(tmp_path_factory, cased):
    """A 3-layer pretrained-looking student with its own cased tokenizer and a head for other labels."""
    torch.manual_seed(1)
    config = tiny_bert_config(num_labels=2, num_layers=3, hidden_size=32)
    config.vocab_size = len(cased)
    config.id2label, config.label2id = {0: "NEG", 1: "POS"}, {"NEG": 0, "POS": 1}
    path = tmp_path_factory.mktemp("cased-student")
    BertForSequenceClassification(config).save_pretrained(path)
    cased.save_pretrained(path)
    return path


def _recipe_flags(teacher, student, output_dir, *extra):
    from conftest import TEST_DATA

    return [
        str(TEST_DATA / "ner_recipe_tiny.yaml"),
        "--teacher_name_or_path",
        str(teacher),
        "--student_name_or_path",
        str(student),
        "--output_dir",
        str(output_dir),
        "--attention_weight",
        "0",
        *extra,
    ]


def _run(recipe, teacher, student, output_dir, flags: str) -> dict:
    """Run the NER recipe with extra space-separated flags; its results.json."""
    import json

    recipe.main(_recipe_flags(teacher, student, output_dir, *flags.split()))
    return json.loads((output_dir / "results.json").read_text())


def test_recipe_distills_into_some_layers_of_a_student_with_its_own_tokenizer(
    recipe, tiny_teacher_dir, cased_student_dir, cased, tmp_path, caplog
):
    import logging

    output_dir = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="hfkdq"):
        saved = _run(recipe, tiny_teacher_dir, cased_student_dir, output_dir, "--compare_plain true")
    assert saved["student"]["tokenizer"] == "own"
    assert saved["student"]["num_layers"] == 2  # --student_num_layers 2 of the student's own 3
    assert saved["student"]["initialised_from_teacher_layers"] == [0, 1]
    assert {"f1", "precision", "recall"} <= set(saved["student"]["metrics"]["test"])
    assert {"f1"} <= set(saved["plain_student"]["metrics"]["test"])
    assert AutoTokenizer.from_pretrained(output_dir / "student").get_vocab() == cased.get_vocab()
    assert AutoTokenizer.from_pretrained(output_dir / "teacher").get_vocab() != cased.get_vocab()
    replaced = [
        r.getMessage() for r in caplog.records if "head" in r.getMessage() and "replaced" in r.getMessage()
    ]
    assert len(replaced) == 2 and "['NEG', 'POS']" in replaced[0]  # the distilled and the plain student


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--attention_weight", "1"), "attention maps, which do not line up across two tokenizers"),
        (("--student_num_layers", "4"), "has 3 layers to copy from"),
        (("--augment", "all"), "--augment makes new views with the teacher's tokenizer"),
    ],
)
def test_recipe_refuses_what_a_cross_tokenizer_student_cannot_do_before_any_output(
    recipe, tiny_teacher_dir, cased_student_dir, tmp_path, extra, message
):
    output_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        recipe.main(_recipe_flags(tiny_teacher_dir, cased_student_dir, output_dir, *extra))
    assert not output_dir.exists()


def test_a_student_without_a_tokenizer_is_refused_before_any_output(
    recipe, tiny_teacher_dir, cased, tmp_path
):
    student = tmp_path / "no-tokenizer"
    config = tiny_bert_config(num_layers=2, hidden_size=32)
    BertForTokenClassification(config).save_pretrained(student)
    output_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="student .*no-tokenizer.* missing tokenizer files"):
        recipe.main(_recipe_flags(tiny_teacher_dir, student, output_dir))
    assert not output_dir.exists()


def test_a_student_that_tokenizes_as_the_teacher_takes_the_shared_path(minilm_tokenizer, cased, tmp_path):
    from hfkdq.student_tokenizer import load_student_tokenizer

    minilm_tokenizer.save_pretrained(tmp_path / "same")
    assert load_student_tokenizer(str(tmp_path / "same"), minilm_tokenizer) is None
    cased.save_pretrained(tmp_path / "cased")
    assert load_student_tokenizer(str(tmp_path / "cased"), minilm_tokenizer).get_vocab() == cased.get_vocab()

    # The same vocabulary read without lowercasing gives other ids for "Paris": not the same tokenization.
    from tokenizers import normalizers

    from hfkdq.compatibility import same_tokenization

    cased_reading = AutoTokenizer.from_pretrained(tmp_path / "same")
    cased_reading.backend_tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False)
    assert cased_reading.get_vocab() == minilm_tokenizer.get_vocab()
    assert not same_tokenization(cased_reading, minilm_tokenizer)
    assert same_tokenization(AutoTokenizer.from_pretrained(tmp_path / "same"), minilm_tokenizer)


@pytest.mark.slow
def test_the_packaged_minilm_is_a_student_of_the_mpnet_teacher(recipe, tmp_path):

    from hfkdq.resources import packaged_minilm_path
    from hfkdq.resources.mpnet import assembled_mpnet_path

    if assembled_mpnet_path() is None:
        pytest.skip("needs the MPNet-base teacher in ~/.cache/hfkdq (make teacher-mpnet)")
    flags = "--student_num_layers 3 --max_train_samples 16 --max_eval_samples 8 --max_seq_length 32"
    saved = _run(
        recipe, "sentence-transformers/all-mpnet-base-v2", packaged_minilm_path(), tmp_path / "run", flags
    )
    assert saved["student"]["tokenizer"] == "own"
    assert saved["student"]["num_layers"] == 3 and saved["student"]["initialised_from_teacher_layers"] == [
        0,
        2,
        4,
    ]
    assert saved["teacher"]["num_layers"] == 12
    assert {"f1"} <= set(saved["student"]["metrics"]["test"])


def test_transfer_data_for_a_cross_tokenizer_student_is_paired_and_labelled_once_through_the_cache(
    recipe, tiny_teacher_dir, cased_student_dir, tmp_path
):
    flags = "--transfer_train_remainder true --max_train_samples 24 --hidden_weight 0 --student_num_layers 3"
    saved = _run(recipe, tiny_teacher_dir, cased_student_dir, tmp_path / "run", flags)
    assert saved["student"]["tokenizer"] == "own"
    assert saved["student"]["transfer_examples"] == 24  # --transfer_ratio 1: as many as the labelled ones
    assert saved["student"]["teacher_cache"] is not None
    assert {"f1"} <= set(saved["student"]["metrics"]["test"])


def test_a_token_student_paired_without_word_positions_is_refused(ner, cased, tmp_path):
    teacher_task, student_task, _ = ner
    unaligned = pair_features(teacher_task.raw_train, teacher_task.featurize, student_task.featurize, False)
    teacher, student = _models(
        len(teacher_task.label_names), len(cased), label_names=teacher_task.label_names
    )
    with pytest.raises(ValueError, match="has no word positions: build it with .*token_level=True"):
        _trainer(teacher, student, unaligned, cased, student_task.data_collator, _args(tmp_path))


def test_a_tokenizer_with_more_ids_than_the_students_embeddings_is_refused(cased):
    from hfkdq.student_tokenizer import check_student_vocabulary

    config = tiny_bert_config()
    config.vocab_size = len(cased) - 1
    with pytest.raises(ValueError, match="its tokenizer has .* tokens but its embeddings only"):
        check_student_vocabulary(config, cased, "student-dir")
    config.vocab_size = len(cased)
    check_student_vocabulary(config, cased, "student-dir")


def test_run_experiment_without_the_students_own_task_data_is_refused_before_the_teacher_trains(
    tiny_teacher_dir, cased_student_dir, minilm_tokenizer, tmp_path
):
    from hfkdq.arguments import ModelArguments
    from hfkdq.pipeline import run_experiment

    task = tiny_ner_task(minilm_tokenizer, "btc", train_sentences=16, eval_sentences=8)
    model_args = ModelArguments(
        teacher_name_or_path=str(tiny_teacher_dir), student_name_or_path=str(cased_student_dir)
    )
    with pytest.raises(ValueError, match="has its own tokenizer, and run_experiment got no student_data"):
        run_experiment(model_args, _args(tmp_path), task, minilm_tokenizer)
    assert not (tmp_path / "run" / "teacher").exists()
