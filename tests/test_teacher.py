"""Teacher preparation: what the teacher is fine-tuned as, whatever form its checkpoint is stored in."""

import pytest
import torch
from conftest import tiny_bert_config, tiny_ner_task
from transformers import BertModel

from hfkdq import DistillationArguments
from hfkdq.arguments import ModelArguments
from hfkdq.teacher import prepare_teacher


def test_a_half_precision_checkpoint_is_fine_tuned_in_float32(minilm_tokenizer, tmp_path):
    """transformers 5 loads fp16-stored weights as fp16; training those without fp32 master weights
    silently loses small updates, so the teacher is always fine-tuned in float32."""
    torch.manual_seed(0)
    BertModel(tiny_bert_config(num_labels=2, num_layers=2, hidden_size=32)).half().save_pretrained(
        tmp_path / "fp16-encoder"
    )
    task = tiny_ner_task(minilm_tokenizer, "btc", train_sentences=16, eval_sentences=8)
    args = DistillationArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=8,
        report_to=[],
        use_cpu=True,
    )
    model_args = ModelArguments(
        teacher_name_or_path=str(tmp_path / "fp16-encoder"), teacher_select_best=False
    )

    teacher = prepare_teacher(model_args, args, task, minilm_tokenizer).model

    assert {parameter.dtype for parameter in teacher.parameters()} == {torch.float32}


def _sst2_task(tokenizer, labels: list[int]):
    from datasets import Dataset, DatasetDict

    from hfkdq.glue_tasks import get_glue_task
    from hfkdq.tasks.glue import glue_task_data

    split = Dataset.from_dict({"sentence": [f"film {i}" for i in range(len(labels))], "label": labels})
    return glue_task_data(get_glue_task("sst2"), DatasetDict(train=split, validation=split), tokenizer, 32)


def test_the_chance_level_is_the_metric_of_always_predicting_the_majority_label(minilm_tokenizer):
    from hfkdq.teacher_checks import chance_level

    ner = tiny_ner_task(minilm_tokenizer, "btc", train_sentences=8, eval_sentences=16)
    assert chance_level(ner, "validation") == (0.0, "always predicting 'O'")
    sst2 = _sst2_task(minilm_tokenizer, [0, 0, 0, 1])
    assert chance_level(sst2, "validation") == (0.75, "always predicting 'negative'")


def test_a_teacher_at_chance_gets_a_warning_naming_the_metric_and_the_chance_level(minilm_tokenizer, caplog):
    from hfkdq.teacher_checks import check_teacher_above_chance

    sst2 = _sst2_task(minilm_tokenizer, [0, 0, 0, 1])
    with caplog.at_level("WARNING", logger="hfkdq.teacher_checks"):
        record = check_teacher_above_chance({"validation": ({"accuracy": 0.75}, None)}, sst2)
    assert record["at_chance"] and record["chance_level"] == 0.75
    message = caplog.records[-1].getMessage()
    assert (
        "validation accuracy is 0.7500, at chance level: always predicting 'negative' scores 0.7500"
        in message
    )

    caplog.clear()
    with caplog.at_level("WARNING", logger="hfkdq.teacher_checks"):
        record = check_teacher_above_chance({"validation": ({"accuracy": 1.0}, None)}, sst2)
    assert not record["at_chance"] and not caplog.records


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.2, 0.4, 0.5], True), ([0.2, 0.5, 0.4], False), ([0.5, 0.5], False), ([0.5], None), ([], None)],
)
def test_the_teacher_is_still_improving_when_its_last_epoch_is_its_best_yet(values, expected):
    from hfkdq.teacher_checks import still_improving

    curve = [{"epoch": index + 1.0, "eval_f1": value} for index, value in enumerate(values)]
    assert still_improving(curve, "f1") is expected


def test_early_stopping_does_not_stop_a_teacher_that_has_not_started_to_learn(
    minilm_tokenizer, tmp_path, monkeypatch
):
    """Entity F1 stays 0 for three epochs, then rises: with patience 2 the stock callback stopped at epoch 3."""
    import dataclasses

    from transformers import BertModel

    import hfkdq.teacher
    from hfkdq.teacher_checks import ChanceLevel

    scripted = iter([0.0, 0.0, 0.0, 0.3, 0.4])
    task = tiny_ner_task(minilm_tokenizer, "btc", train_sentences=16, eval_sentences=8)
    task = dataclasses.replace(task, compute_metrics=lambda prediction: {"f1": next(scripted)})
    monkeypatch.setattr(hfkdq.teacher, "chance_level", lambda task, split: ChanceLevel(0.0, "always 'O'"))
    torch.manual_seed(0)
    BertModel(tiny_bert_config(num_labels=2, num_layers=2, hidden_size=32)).save_pretrained(
        tmp_path / "encoder"
    )
    args = DistillationArguments(
        output_dir=str(tmp_path / "run"),
        num_train_epochs=5,
        per_device_train_batch_size=8,
        report_to=[],
        use_cpu=True,
    )
    model_args = ModelArguments(
        teacher_name_or_path=str(tmp_path / "encoder"), teacher_early_stopping_patience=2
    )

    curve = prepare_teacher(model_args, args, task, minilm_tokenizer).learning_curve

    assert [entry["eval_f1"] for entry in curve] == [0.0, 0.0, 0.0, 0.3, 0.4]


def _headless_teacher(tmp_path):
    torch.manual_seed(0)
    BertModel(tiny_bert_config(num_labels=2, num_layers=2, hidden_size=32)).save_pretrained(
        tmp_path / "encoder"
    )
    return str(tmp_path / "encoder")


def test_max_steps_caps_the_student_only_and_the_teacher_gets_its_own_cap(minilm_tokenizer, tmp_path, caplog):
    """Issue 20, case 3: a quick ``--max_steps 1`` run used to fine-tune a one-step teacher too, silently."""
    task = tiny_ner_task(minilm_tokenizer, "btc", train_sentences=16, eval_sentences=8)  # 2 steps an epoch
    args = DistillationArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=1,
        per_device_train_batch_size=8,
        report_to=[],
        use_cpu=True,
    )
    teacher = _headless_teacher(tmp_path)

    curve = prepare_teacher(
        ModelArguments(teacher_name_or_path=teacher, teacher_num_train_epochs=2), args, task, minilm_tokenizer
    ).learning_curve
    assert [point["step"] for point in curve] == [2, 4], (
        "two whole epochs, whatever the student's --max_steps"
    )
    assert "--max_steps 1 caps the student only" in caplog.text

    capped = prepare_teacher(
        ModelArguments(teacher_name_or_path=teacher, teacher_num_train_epochs=2, teacher_max_steps=3),
        args,
        task,
        minilm_tokenizer,
    ).learning_curve
    assert capped[-1]["step"] == 3


def test_every_teacher_setting_that_differs_from_the_students_is_logged(minilm_tokenizer, tmp_path, caplog):
    import logging

    from hfkdq.teacher import teacher_training_arguments

    args = DistillationArguments(
        output_dir=str(tmp_path / "run"), num_train_epochs=3, learning_rate=1e-3, report_to=[], use_cpu=True
    )
    with caplog.at_level(logging.INFO, logger="hfkdq.teacher"):
        teacher_args = teacher_training_arguments(
            ModelArguments(teacher_num_train_epochs=5, teacher_learning_rate=3e-4),
            args,
            eval_strategy="epoch",
        )
    assert (teacher_args.num_train_epochs, teacher_args.learning_rate) == (5, 3e-4)
    for logged in (
        "num_train_epochs=5 (student: 3)",
        "learning_rate=0.0003 (student: 0.001)",
        "eval_strategy=epoch (student: no)",
    ):
        assert logged in caplog.text


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("teacher_num_train_epochs", 0),
        ("teacher_num_train_epochs", -1),
        ("teacher_num_train_epochs", float("nan")),
        ("teacher_num_train_epochs", float("inf")),
        ("teacher_learning_rate", 0),
        ("teacher_learning_rate", -1e-4),
        ("teacher_learning_rate", float("nan")),
        ("teacher_max_steps", 0),
        ("teacher_max_steps", -5),
        ("teacher_early_stopping_patience", 0),
        ("teacher_min_metric", 1.5),
        ("teacher_min_metric", float("nan")),
        ("teacher_finetune", "sometimes"),
    ],
)
def test_a_teacher_setting_that_would_silently_fall_back_is_refused(flag, value):
    """Issue 20, case 2: ``--teacher_num_train_epochs 0`` used to train ``num_train_epochs`` without a word
    (``0 or num_train_epochs``); a teacher used as given is ``--teacher_finetune never``."""
    with pytest.raises(ValueError, match=f"--{flag} must be"):
        ModelArguments(**{flag: value})
