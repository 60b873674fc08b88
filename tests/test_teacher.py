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
