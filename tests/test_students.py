"""make_student copies exactly the chosen teacher layers, for BERT and another encoder family."""

import pytest
import torch
from conftest import tiny_bert_config
from transformers import BertForTokenClassification, RobertaConfig, RobertaForSequenceClassification

from hfkdq.students import find_layer_list, load_student, make_student


def _tiny_roberta(num_layers=4):
    config = RobertaConfig(
        vocab_size=120,
        hidden_size=32,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
    )
    return RobertaForSequenceClassification(config)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a, b)


def test_bert_student_copies_embeddings_head_and_the_default_alternate_teacher_layers():
    torch.manual_seed(0)
    teacher = BertForTokenClassification(tiny_bert_config(num_labels=5, num_layers=6))
    student = make_student(teacher, num_layers=3)
    assert student.config.num_hidden_layers == 3
    assert student.config.distilled_from_layers == [0, 2, 4]
    for student_index, teacher_index in enumerate([0, 2, 4]):
        s_layer, t_layer = (
            student.bert.encoder.layer[student_index],
            teacher.bert.encoder.layer[teacher_index],
        )
        for (name, s_param), (_, t_param) in zip(
            s_layer.named_parameters(), t_layer.named_parameters(), strict=True
        ):
            assert _same(s_param, t_param), (
                f"student layer {student_index}.{name} != teacher layer {teacher_index}"
            )
    assert _same(
        student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight
    )
    assert _same(student.classifier.weight, teacher.classifier.weight)
    assert student.config.id2label == teacher.config.id2label


def test_explicit_layer_list_is_copied_in_order():
    torch.manual_seed(0)
    teacher = BertForTokenClassification(tiny_bert_config(num_layers=4))
    student = make_student(teacher, layers=[3, 0])
    query = lambda model, i: model.bert.encoder.layer[i].attention.self.query.weight  # noqa: E731
    assert _same(query(student, 0), query(teacher, 3))
    assert _same(query(student, 1), query(teacher, 0))


def test_student_is_a_copy_not_a_view_of_the_teacher():
    teacher = BertForTokenClassification(tiny_bert_config(num_layers=4))
    student = make_student(teacher, num_layers=2)
    with torch.no_grad():
        student.classifier.weight.add_(1.0)
    assert not torch.equal(student.classifier.weight, teacher.classifier.weight)


def test_roberta_student_copies_its_layers_too():
    torch.manual_seed(0)
    teacher = _tiny_roberta(num_layers=4)
    student = make_student(teacher, num_layers=2, layers="top-aligned")
    assert find_layer_list(teacher)[0] == "roberta.encoder.layer"
    assert _same(
        student.roberta.encoder.layer[0].output.dense.weight,
        teacher.roberta.encoder.layer[1].output.dense.weight,
    )
    assert _same(
        student.roberta.encoder.layer[1].output.dense.weight,
        teacher.roberta.encoder.layer[3].output.dense.weight,
    )
    inputs = torch.randint(3, 100, (2, 7))
    assert student(input_ids=inputs).logits.shape == (2, 2)


def test_layers_outside_the_teacher_are_rejected():
    teacher = BertForTokenClassification(tiny_bert_config(num_layers=4))
    with pytest.raises(ValueError, match="do not exist"):
        make_student(teacher, layers=[1, 4])


def test_a_student_config_gets_the_teachers_label_set():
    teacher = BertForTokenClassification(tiny_bert_config(num_labels=5, num_layers=4))
    config = tiny_bert_config(num_labels=2, num_layers=1, hidden_size=16, heads=2)
    student = load_student(config, teacher)
    assert isinstance(student, BertForTokenClassification)
    assert student.config.num_labels == 5 and student.config.id2label == teacher.config.id2label
    assert student.config.num_hidden_layers == 1


def test_some_layers_of_a_pretrained_student_are_copied_and_its_other_head_replaced(tmp_path, caplog):
    import logging

    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    pretrained = BertForSequenceClassification(
        tiny_bert_config(num_labels=2, num_layers=4, hidden_size=16, heads=2)
    )
    pretrained.save_pretrained(tmp_path / "pretrained")
    teacher = BertForTokenClassification(tiny_bert_config(num_labels=5, num_layers=4))
    with caplog.at_level(logging.WARNING, logger="hfkdq"):
        student = load_student(str(tmp_path / "pretrained"), teacher, num_layers=2, layers="alternate")
    assert isinstance(student, BertForTokenClassification)
    assert student.config.num_hidden_layers == 2 and student.config.distilled_from_layers == [0, 2]
    assert student.config.id2label == teacher.config.id2label
    for student_layer, own_layer in ((0, 0), (1, 2)):
        torch.testing.assert_close(
            student.bert.encoder.layer[student_layer].output.dense.weight,
            pretrained.bert.encoder.layer[own_layer].output.dense.weight,
        )
    assert any("head is replaced" in record.getMessage() for record in caplog.records)
    with pytest.raises(ValueError, match="has 4 layers to copy from"):
        load_student(str(tmp_path / "pretrained"), teacher, num_layers=5)
