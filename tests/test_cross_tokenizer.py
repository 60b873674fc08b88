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

    with pytest.raises(ValueError, match="hidden-state loss across two tokenizers compares words"):
        _trainer(
            teacher, student, paired, cased, student_task.data_collator, _args(tmp_path, hidden_weight=1.0)
        )
