"""Build the student: a shallower copy of the teacher, or any smaller encoder.

Copying the embeddings and a spread of the teacher's layers (DistilBERT's initialisation) starts the
student close to the teacher, which matters more than any loss setting when data is small.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Sequence

from torch import nn
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from hfkdq.heads import auto_class_for, head_of_architectures
from hfkdq.student_init import DEFAULT_STUDENT_INIT, choose_init_layers

logger = logging.getLogger(__name__)


def find_layer_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The transformer block list (e.g. ``bert.encoder.layer``), found by shape rather than by name.

    Searching for the ModuleList whose length is the config's layer count works across BERT,
    RoBERTa, MPNet, ELECTRA and DistilBERT without a per-family table.
    """
    num_layers = model.config.num_hidden_layers
    candidates = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList) and len(module) == num_layers and name
    ]
    if not candidates:
        raise ValueError(
            f"could not find the {num_layers} transformer layers of {type(model).__name__}; "
            "pass a student config or model instead of copying layers"
        )
    return min(candidates, key=lambda item: item[0].count("."))


def make_student(
    teacher: PreTrainedModel,
    num_layers: int | None = None,
    layers: str | Sequence[int] = DEFAULT_STUDENT_INIT,
) -> PreTrainedModel:
    """A student of the teacher's class with ``num_layers`` blocks copied from the teacher.

    Embeddings, pooler and head are copied as they are; student block ``i`` is teacher block
    ``layers[i]``. ``layers`` is a strategy of `hfkdq.student_init.INIT_STRATEGIES` (default
    ``"alternate"``: [0, 2, 4] for 3 of 6) or an explicit list; ``num_layers`` defaults to the
    list's length or half the teacher.
    """
    num_teacher_layers = teacher.config.num_hidden_layers
    if num_layers is None:
        num_layers = len(layers) if not isinstance(layers, str) else max(1, num_teacher_layers // 2)
    chosen = choose_init_layers(layers, num_layers, num_teacher_layers)

    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = num_layers
    student = type(teacher)(config)

    prefix, _ = find_layer_list(teacher)
    layer_key = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.(.*)$")
    teacher_to_student = {teacher_layer: i for i, teacher_layer in enumerate(chosen)}
    teacher_state = teacher.state_dict()
    student_state = {}
    for key, value in teacher_state.items():
        match = layer_key.match(key)
        if match is None:
            student_state[key] = value.clone()
        elif int(match.group(1)) in teacher_to_student:
            student_state[f"{prefix}.{teacher_to_student[int(match.group(1))]}.{match.group(2)}"] = (
                value.clone()
            )
    missing, unexpected = student.load_state_dict(student_state, strict=False)
    # Buffers such as position_ids may be non-persistent; anything else missing is a real error.
    real_missing = [key for key in missing if not key.endswith("position_ids")]
    if real_missing or unexpected:
        raise RuntimeError(f"layer copy mismatch: missing {real_missing}, unexpected {unexpected}")
    student.config.distilled_from_layers = chosen
    return student.to(next(teacher.parameters()).device)


def load_student(
    student: str | PretrainedConfig | PreTrainedModel,
    teacher: PreTrainedModel,
    num_layers: int | None = None,
    layers: str | Sequence[int] = DEFAULT_STUDENT_INIT,
) -> PreTrainedModel:
    """Any smaller encoder as student: a model, a config, or a Hub id / local path.

    The head is rebuilt for the teacher's label set, so the student and teacher logits compare
    class by class; a head the student brings for another label set is replaced, and a log line says
    so. ``num_layers`` keeps that many of the student's own blocks (chosen by ``layers``, as for a
    copy of the teacher): ``--student_name_or_path X --student_num_layers 3`` is 3 of X's layers.
    """
    if isinstance(student, PreTrainedModel):
        return student
    # A teacher without a token-classification head has a sequence one: the only other head built here.
    head = head_of_architectures([type(teacher).__name__]) or "sequence"
    label_kwargs = {
        "num_labels": teacher.config.num_labels,
        "id2label": dict(teacher.config.id2label),
        "label2id": dict(teacher.config.label2id),
    }
    if getattr(teacher.config, "problem_type", None):
        label_kwargs["problem_type"] = teacher.config.problem_type
    if isinstance(student, PretrainedConfig):
        config = copy.deepcopy(student)
        for key, value in label_kwargs.items():
            setattr(config, key, value)
        model = auto_class_for(head).from_config(config)
    else:
        own_config = AutoConfig.from_pretrained(student)
        check_student_depth(num_layers, layers, own_config.num_hidden_layers, student)
        log_replaced_head(student, own_config, head, label_kwargs["id2label"])
        config = AutoConfig.from_pretrained(student, **label_kwargs)
        # A head for other labels (or another task) is left out of loading and built anew.
        model = auto_class_for(head).from_pretrained(student, config=config, ignore_mismatched_sizes=True)
    if num_layers is None or num_layers == model.config.num_hidden_layers:
        return model
    check_student_depth(num_layers, layers, model.config.num_hidden_layers, "the student")
    return make_student(model, num_layers, layers)


def check_student_depth(
    num_layers: int | None, layers: str | Sequence[int], available: int, source: object
) -> None:
    """Fail before any training when ``num_layers`` of a pretrained student's blocks cannot be chosen."""
    if num_layers is None:
        return
    if isinstance(num_layers, int) and num_layers > available:
        raise ValueError(
            f"--student_num_layers {num_layers}: the student {source} has {available} layers to copy from; "
            f"use at most {available}, or leave --student_num_layers unset to keep them all"
        )
    choose_init_layers(layers, num_layers, available)


def log_replaced_head(source: object, own_config: PretrainedConfig, head: str, id2label: dict) -> None:
    """Say when a student's own classification head is dropped for one over the teacher's labels."""
    own_head = head_of_architectures(getattr(own_config, "architectures", None) or [])
    if own_head is None:
        logger.info(
            "The student %s has no classification head: a new %s head is built for the teacher's labels.",
            source,
            head,
        )
        return
    own_labels = {int(key): value for key, value in own_config.id2label.items()}
    if own_head == head and own_labels == {int(key): value for key, value in id2label.items()}:
        return
    logger.warning(
        "The student %s has a %s-classification head for labels %s; the teacher predicts %s, so that head "
        "is replaced by a new %s head for the teacher's labels (trained from scratch).",
        source,
        own_head,
        list(own_labels.values()),
        list(id2label.values()),
        head,
    )


def count_parameters(model: nn.Module) -> int:
    """Number of parameters, for the size column of reports."""
    return sum(parameter.numel() for parameter in model.parameters())
