"""DistillationTrainer on tiny random BERTs over slices of real NER data."""

import dataclasses
import math
import os

import pytest
import safetensors.torch
import torch
from conftest import NER_SOURCES, ForwardCounter, tiny_bert_config, tiny_ner_task, tiny_token_models
from transformers import AutoModelForTokenClassification, AutoTokenizer, BertForTokenClassification

from hfkdq import DistillationArguments, DistillationTrainer
from hfkdq.distillation_model import PROJECTION_PREFIX


def _args(tmp_path, arguments_type=DistillationArguments, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "run"),
        max_steps=12,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        learning_rate=3e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=7,
        hidden_weight=1.0,
        attention_weight=1.0,
    )
    settings.update(overrides)
    return arguments_type(**settings)


def _trainer(task, tokenizer, args, teacher=None, student=None):
    if teacher is None:
        teacher, student = tiny_token_models(task.label_names)
    return DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=task.train_dataset,
        eval_dataset=task.features["validation"],
        processing_class=tokenizer,
        data_collator=task.data_collator,
        compute_metrics=task.compute_metrics,
    )


@pytest.fixture(scope="module")
def btc_task(minilm_tokenizer):
    return tiny_ner_task(minilm_tokenizer, "btc")


def _logged(trainer, term):
    return [entry[term] for entry in trainer.state.log_history if term in entry and "eval_loss" not in entry]


def _early_and_late(values):
    return sum(values[:3]) / 3, sum(values[-3:]) / 3


@pytest.mark.parametrize("source", NER_SOURCES)
def test_total_loss_decreases_and_every_term_is_logged(source, minilm_tokenizer, tmp_path):
    task = tiny_ner_task(minilm_tokenizer, source)
    trainer = _trainer(task, minilm_tokenizer, _args(tmp_path, max_steps=24))
    trainer.train()
    for term in ("loss_ce", "loss_kd", "loss_hidden", "loss_attention"):
        assert len(_logged(trainer, term)) == 24, f"{term} is not logged at every logging step"
    early, late = _early_and_late(_logged(trainer, "loss"))
    assert late < early


@pytest.mark.parametrize("term", ["ce", "kd", "hidden", "attention"])
def test_each_term_decreases_when_it_is_the_objective(term, btc_task, minilm_tokenizer, tmp_path):
    weights = {f"{name}_weight": float(name == term) for name in ("ce", "kd", "hidden", "attention")}
    trainer = _trainer(btc_task, minilm_tokenizer, _args(tmp_path, max_steps=24, **weights))
    trainer.train()
    early, late = _early_and_late(_logged(trainer, f"loss_{term}"))
    assert late < early, f"loss_{term} did not decrease: {early:.4f} -> {late:.4f}"


def test_teacher_stays_frozen_in_eval_mode_and_unchanged(btc_task, minilm_tokenizer, tmp_path):
    teacher, student = tiny_token_models(btc_task.label_names)
    before = {name: value.clone() for name, value in teacher.state_dict().items()}
    trainer = _trainer(btc_task, minilm_tokenizer, _args(tmp_path, max_steps=4), teacher, student)
    trainer.train()
    assert not teacher.training
    assert not any(parameter.requires_grad for parameter in teacher.parameters())
    assert all(torch.equal(before[name], value) for name, value in teacher.state_dict().items())
    assert next(teacher.parameters()).device == trainer.args.device


def test_saved_student_is_plain_and_round_trips_with_identical_logits(btc_task, minilm_tokenizer, tmp_path):
    trainer = _trainer(btc_task, minilm_tokenizer, _args(tmp_path, max_steps=6))
    trainer.train()
    assert len(trainer.model.projections) > 0, "teacher is wider, so projections must exist"
    trainer.save_model(str(tmp_path / "student"))

    saved_keys = set(safetensors.torch.load_file(tmp_path / "student" / "model.safetensors"))
    assert saved_keys == set(trainer.student.state_dict()) - {"bert.embeddings.position_ids"}
    assert not any("projection" in key for key in saved_keys)

    reloaded = AutoModelForTokenClassification.from_pretrained(tmp_path / "student")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "student")
    assert reloaded.config.num_hidden_layers == 2 and reloaded.config.hidden_size == 32
    assert reloaded.config.id2label == dict(enumerate(btc_task.label_names))
    batch = tokenizer(["Obama visits Paris today"], return_tensors="pt")
    trainer.student.eval()
    with torch.no_grad():
        # Same weights; the trained copy may use eager attention (for the attention loss) and the
        # reloaded one SDPA, so equality is up to float rounding.
        torch.testing.assert_close(
            trainer.student(**batch).logits, reloaded(**batch).logits, rtol=0, atol=1e-5
        )


def test_evaluation_reports_entity_f1(btc_task, minilm_tokenizer, tmp_path):
    trainer = _trainer(btc_task, minilm_tokenizer, _args(tmp_path, max_steps=2))
    metrics = trainer.evaluate()
    assert {"eval_f1", "eval_precision", "eval_recall", "eval_PER_f1"} <= set(metrics)


def test_checkpoints_carry_the_projections_and_resume_exactly(btc_task, minilm_tokenizer, tmp_path):
    def run(resume=None):
        teacher, student = tiny_token_models(btc_task.label_names)
        args = _args(tmp_path, max_steps=8, save_strategy="steps", save_steps=4, logging_steps=4)
        trainer = _trainer(btc_task, minilm_tokenizer, args, teacher, student)
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    uninterrupted = run()
    checkpoint = tmp_path / "run" / "checkpoint-4"
    checkpoint_keys = set(safetensors.torch.load_file(checkpoint / "model.safetensors"))
    assert any(key.startswith(PROJECTION_PREFIX) for key in checkpoint_keys)
    final = {k: v.clone() for k, v in uninterrupted.model.state_dict().items()}

    resumed = run(resume=str(checkpoint))
    for name, value in resumed.model.state_dict().items():
        assert torch.allclose(value, final[name], atol=1e-6), f"{name} differs after resuming"


def test_non_finite_loss_stops_with_the_step_and_terms(btc_task, minilm_tokenizer, tmp_path):
    teacher, student = tiny_token_models(btc_task.label_names)
    with torch.no_grad():
        student.classifier.bias.fill_(float("nan"))
    trainer = _trainer(btc_task, minilm_tokenizer, _args(tmp_path, max_steps=2), teacher, student)
    with pytest.raises(FloatingPointError, match=r"step 0.*ce=nan.*kd=nan.*student's logits are not finite"):
        trainer.train()


def test_a_non_finite_teacher_is_named_as_the_cause(btc_task, minilm_tokenizer, tmp_path):
    teacher, student = tiny_token_models(btc_task.label_names)
    with torch.no_grad():
        teacher.classifier.bias.fill_(float("nan"))
    args = _args(tmp_path, max_steps=2, hidden_weight=0.0, attention_weight=0.0)
    trainer = _trainer(btc_task, minilm_tokenizer, args, teacher, student)
    with pytest.raises(FloatingPointError, match="teacher's logits are not finite"):
        trainer.train()


@pytest.mark.parametrize("temperature", [0.05, 100.0])
def test_extreme_temperatures_keep_training_finite(temperature, btc_task, minilm_tokenizer, tmp_path):
    args = _args(tmp_path, max_steps=3, temperature=temperature, hidden_weight=0.0, attention_weight=0.0)
    trainer = _trainer(btc_task, minilm_tokenizer, args)
    trainer.train()
    assert all(math.isfinite(value) for value in _logged(trainer, "loss_kd"))


def test_a_batch_whose_labels_are_all_ignored_gives_a_finite_zero_task_loss(
    btc_task, minilm_tokenizer, tmp_path
):
    unlabelled = btc_task.train_dataset.map(lambda row: {"labels": [-100] * len(row["labels"])})
    teacher, student = tiny_token_models(btc_task.label_names)
    args = _args(tmp_path, max_steps=2, hidden_weight=0.0, attention_weight=0.0)
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=unlabelled,
        processing_class=minilm_tokenizer,
        data_collator=btc_task.data_collator,
    )
    trainer.train()
    assert _logged(trainer, "loss_ce") == [0.0, 0.0]


# ----- bad input -----------------------------------------------------------------------------------


def test_different_vocabularies_are_rejected(btc_task, minilm_tokenizer, tmp_path):
    teacher, _ = tiny_token_models(btc_task.label_names)
    config = tiny_bert_config(num_labels=len(btc_task.label_names), num_layers=2)
    config.vocab_size = 1000
    config.id2label = teacher.config.id2label
    with pytest.raises(ValueError, match="different vocabularies"):
        _trainer(btc_task, minilm_tokenizer, _args(tmp_path), teacher, BertForTokenClassification(config))


def test_teacher_with_other_labels_is_rejected(btc_task, minilm_tokenizer, tmp_path):
    teacher, student = tiny_token_models(btc_task.label_names)
    teacher.config.id2label = {i: f"X{i}" for i in range(len(btc_task.label_names))}
    with pytest.raises(ValueError, match="id2label"):
        _trainer(btc_task, minilm_tokenizer, _args(tmp_path), teacher, student)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"kd_weight": -0.5}, ">= 0"),
        (
            {"ce_weight": 0.0, "kd_weight": 0.0, "hidden_weight": 0.0, "attention_weight": 0.0},
            "all loss weights are 0",
        ),
        ({"hidden_loss": "l1"}, "mse"),
    ],
)
def test_invalid_distillation_settings_are_rejected(overrides, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        _args(tmp_path, **overrides)


def test_layer_map_outside_the_teacher_is_rejected(btc_task, minilm_tokenizer, tmp_path):
    with pytest.raises(ValueError, match="outside the teacher"):
        _trainer(btc_task, minilm_tokenizer, _args(tmp_path, layer_map="1,4"))


def test_attention_loss_with_different_head_counts_is_rejected(btc_task, minilm_tokenizer, tmp_path):
    teacher, _ = tiny_token_models(btc_task.label_names)
    config = tiny_bert_config(num_labels=len(btc_task.label_names), num_layers=2, hidden_size=32, heads=2)
    config.id2label = teacher.config.id2label
    with pytest.raises(ValueError, match="head counts"):
        _trainer(btc_task, minilm_tokenizer, _args(tmp_path), teacher, BertForTokenClassification(config))


def test_different_head_counts_are_fine_without_attention_loss(btc_task, minilm_tokenizer, tmp_path):
    teacher, _ = tiny_token_models(btc_task.label_names)
    config = tiny_bert_config(num_labels=len(btc_task.label_names), num_layers=2, hidden_size=32, heads=2)
    config.id2label = teacher.config.id2label
    trainer = _trainer(
        btc_task,
        minilm_tokenizer,
        _args(tmp_path, attention_weight=0.0, max_steps=2),
        teacher,
        BertForTokenClassification(config),
    )
    trainer.train()
    assert trainer.state.global_step == 2
    assert len(trainer.model.projections) > 0, "hidden-state loss across widths needs projections"


# ----- gradient accumulation, teacher use, evaluation, saving --------------------------------------


def _no_dropout_models(label_names, num_labels=None, head=BertForTokenClassification, seed=0):
    torch.manual_seed(seed)
    configs = []
    for layers, width in ((4, 64), (2, 32)):
        config = tiny_bert_config(
            num_labels=num_labels or len(label_names),
            num_layers=layers,
            hidden_size=width,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        if num_labels is None:
            config.id2label = dict(enumerate(label_names))
            config.label2id = {name: i for i, name in enumerate(label_names)}
        configs.append(config)
    return head(configs[0]), head(configs[1])


def _sequence_task(task):
    """Sentences of the NER slice as a 2-class sequence task (label: even/odd length), for the pooled path."""
    from transformers import DataCollatorWithPadding

    features = task.train_dataset.remove_columns("labels")
    features = features.map(lambda row: {"labels": len(row["input_ids"]) % 2})
    return features, DataCollatorWithPadding(task.data_collator.tokenizer)


def _one_sgd_step(task, tokenizer, tmp_path, name, batch_size, accumulation, head, fix_accumulation=True):
    if head == "token":
        teacher, student = _no_dropout_models(task.label_names)
        train, collator = task.train_dataset, task.data_collator
    else:
        from transformers import BertForSequenceClassification

        teacher, student = _no_dropout_models(None, num_labels=2, head=BertForSequenceClassification)
        train, collator = _sequence_task(task)
    args = _args(
        tmp_path / name,
        max_steps=1,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        optim="sgd",
        learning_rate=0.5,
        max_grad_norm=0.0,
        warmup_steps=0,
        weight_decay=0.0,
    )
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        data_collator=collator,
    )
    if not fix_accumulation:  # the per-micro-batch mean that accumulation used to get wrong
        trainer.model_accepts_loss_kwargs = False
    trainer.train()
    return {key: value.detach().clone() for key, value in trainer.model.state_dict().items()}


def _max_difference(first, second):
    return max((first[key] - second[key]).abs().max().item() for key in first)


@pytest.mark.parametrize("head", ["token", "sequence"])
def test_gradient_accumulation_gives_the_update_of_one_larger_batch(
    head, btc_task, minilm_tokenizer, tmp_path
):
    big = _one_sgd_step(btc_task, minilm_tokenizer, tmp_path, "big", 32, 1, head)
    accumulated = _one_sgd_step(btc_task, minilm_tokenizer, tmp_path, "acc", 8, 4, head)
    assert _max_difference(big, accumulated) < 1e-5
    if head == "token":
        # Micro-batches hold different numbers of labelled tokens, so averaging per micro-batch
        # differs measurably: the comparison above can fail.
        naive = _one_sgd_step(
            btc_task, minilm_tokenizer, tmp_path, "naive", 8, 4, head, fix_accumulation=False
        )
        assert _max_difference(big, naive) > 1e-4


def test_plain_fine_tuning_runs_no_teacher_forward_pass(btc_task, minilm_tokenizer, tmp_path):
    teacher, student = tiny_token_models(btc_task.label_names)
    counter = ForwardCounter(teacher)
    args = _args(tmp_path, max_steps=3, kd_weight=0.0, hidden_weight=0.0, attention_weight=0.0)
    trainer = _trainer(btc_task, minilm_tokenizer, args, teacher, student)
    trainer.train()
    assert counter.calls == 0
    assert _logged(trainer, "loss_ce") and not _logged(trainer, "loss_kd")


def test_distillation_runs_the_teacher_once_per_training_batch(btc_task, minilm_tokenizer, tmp_path):
    teacher, student = tiny_token_models(btc_task.label_names)
    counter = ForwardCounter(teacher)
    trainer = _trainer(btc_task, minilm_tokenizer, _args(tmp_path, max_steps=3), teacher, student)
    trainer.train()
    assert counter.calls == 3


def test_a_bf16_teacher_gives_float32_soft_targets_close_to_the_float32_ones(
    btc_task, minilm_tokenizer, tmp_path
):
    teacher, student = tiny_token_models(btc_task.label_names)
    full = _trainer(btc_task, minilm_tokenizer, _args(tmp_path, max_steps=3), teacher, student)
    half = _trainer(
        btc_task, minilm_tokenizer, _args(tmp_path, max_steps=3, teacher_bf16=True), teacher, student
    )
    batch = btc_task.data_collator([btc_task.train_dataset[index] for index in range(8)])
    exact, rounded = full._teacher_forward(batch), half._teacher_forward(batch)
    for name in ("logits", "hidden_states", "attentions"):
        expected, got = getattr(exact, name), getattr(rounded, name)
        expected, got = (expected, got) if name == "logits" else (expected[-1], got[-1])
        assert got.dtype == torch.float32
        assert torch.allclose(got, expected, atol=0.05, rtol=0.05)
    assert not torch.equal(rounded.logits, exact.logits)  # it did run in bf16
    assert next(half.teacher.parameters()).dtype == torch.bfloat16
    assert next(teacher.parameters()).dtype == torch.float32  # the caller's teacher is untouched
    half.train()
    assert all(math.isfinite(value) for value in _logged(half, "loss"))


def test_evaluation_reports_the_students_own_loss_without_the_teacher(btc_task, minilm_tokenizer, tmp_path):
    from transformers import Trainer, TrainingArguments

    teacher, student = tiny_token_models(btc_task.label_names)
    counter = ForwardCounter(teacher)
    trainer = _trainer(btc_task, minilm_tokenizer, _args(tmp_path, kd_weight=5.0), teacher, student)
    distilled = trainer.evaluate()
    assert counter.calls == 0
    plain = Trainer(
        model=student,
        args=TrainingArguments(
            output_dir=str(tmp_path / "plain"), report_to=[], use_cpu=True, per_device_eval_batch_size=16
        ),
        eval_dataset=btc_task.features["validation"],
        data_collator=btc_task.data_collator,
    ).evaluate()
    assert distilled["eval_loss"] == pytest.approx(plain["eval_loss"], rel=1e-5)


def test_best_checkpoint_by_eval_loss_is_restored_into_the_student(btc_task, minilm_tokenizer, tmp_path):
    args = _args(
        tmp_path,
        max_steps=6,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
    )
    trainer = _trainer(btc_task, minilm_tokenizer, args)
    trainer.train()
    best = trainer.state.best_model_checkpoint
    assert best is not None
    saved = safetensors.torch.load_file(os.path.join(best, "model.safetensors"))
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value.cpu(), saved[key]), f"{key} was not restored from {best}"


def test_only_the_saving_process_writes(btc_task, minilm_tokenizer, tmp_path, monkeypatch):
    trainer = _trainer(btc_task, minilm_tokenizer, _args(tmp_path, max_steps=1))
    monkeypatch.setattr(type(trainer.args), "should_save", property(lambda self: False))
    trainer.save_model(str(tmp_path / "not-written"))
    assert not (tmp_path / "not-written").exists()


def test_a_checkpoint_of_another_model_is_refused(btc_task, minilm_tokenizer, tmp_path):
    trainer = _trainer(btc_task, minilm_tokenizer, _args(tmp_path, max_steps=1))
    foreign = {"encoder.weight": torch.zeros(2, 2)}
    with pytest.raises(RuntimeError, match="does not match the student"):
        trainer.model.load_state_dict(foreign, strict=False)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"fsdp": "full_shard"}, "FSDP"), ({"deepspeed": {"zero_optimization": {"stage": 2}}}, "DeepSpeed")],
)
def test_fsdp_and_deepspeed_are_refused_with_a_clear_message(overrides, message, tmp_path):
    from hfkdq.config import check_supported_parallelism

    arguments = _args(tmp_path)
    for name, value in overrides.items():
        object.__setattr__(arguments, name, value)
    with pytest.raises(ValueError, match=message):
        check_supported_parallelism(arguments)


def test_a_new_loss_term_is_one_row_and_its_own_weight(btc_task, minilm_tokenizer, tmp_path, monkeypatch):
    """A term with its own weight field trains beside the built-in ones; nothing in the trainer changes."""
    from hfkdq import loss_terms

    def logit_norm(batch):
        return batch.student_logits.float().pow(2).mean()

    row = loss_terms.LossTerm("logit_norm", "logit_norm_weight", logit_norm, 0.0, "test-only term")
    monkeypatch.setitem(loss_terms.LOSS_TERMS, "logit_norm", row)
    arguments_type = dataclasses.make_dataclass(
        "ArgumentsWithLogitNorm",
        [("logit_norm_weight", float, dataclasses.field(default=0.5))],
        bases=(DistillationArguments,),
    )
    args = _args(tmp_path, arguments_type, max_steps=2, attention_weight=0.0)
    trainer = _trainer(btc_task, minilm_tokenizer, args)
    trainer.train()
    assert len(_logged(trainer, "loss_logit_norm")) == 2
    assert len(_logged(trainer, "loss_hidden")) == 2, "the built-in terms still train beside it"
    assert [term.name for term in loss_terms.active_terms(args)] == ["ce", "kd", "hidden", "logit_norm"]
