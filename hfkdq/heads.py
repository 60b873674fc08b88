"""The two heads hfkdq distils and quantizes, named once: 'sequence' and 'token' classification.

A head is what `TaskData.head`, a quantized variant's metadata and a saved model's architecture have
in common; this module maps it to the `AutoModelFor...` class that builds or loads it, and back from a
model's architecture name, so no other module spells out the pair.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hfkdq.model_checks import NotASavedModelError

IGNORE_INDEX = -100
"""The label of a token no loss and no metric scores (special tokens, continuation subwords, padding):
the `ignore_index` of `torch.nn.CrossEntropyLoss` and the `label_pad_token_id` of transformers' collators."""

HEAD_SUFFIXES = {"sequence": "ForSequenceClassification", "token": "ForTokenClassification"}
"""Head name -> the suffix of the architecture names (`BertForTokenClassification`) that have it."""


def auto_class_for(head: str) -> type:
    """`AutoModelForSequenceClassification` for 'sequence', `AutoModelForTokenClassification` for 'token'."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    classes = {"sequence": AutoModelForSequenceClassification, "token": AutoModelForTokenClassification}
    if head not in classes:
        raise ValueError(f"Unknown head {head!r}; hfkdq handles 'sequence' and 'token' classification.")
    return classes[head]


def head_of_architectures(architectures: Iterable[str]) -> str | None:
    """The head of the first architecture name with one ('BertForTokenClassification' -> 'token'), or None."""
    for architecture in architectures:
        for head, suffix in HEAD_SUFFIXES.items():
            if architecture.endswith(suffix):
                return head
    return None


def head_of(config: Any, path: str | Path = "") -> str:
    """'sequence' or 'token', from `config.architectures`, the field `save_pretrained` always writes.

    A model with neither head fails with a `NotASavedModelError` that says how to save one.
    """
    architectures = getattr(config, "architectures", None) or []
    head = head_of_architectures(architectures)
    if head is not None:
        return head
    raise NotASavedModelError(
        f"{path}: config.json names architectures {architectures}, but quantization needs a sequence- or "
        "token-classification model (…ForSequenceClassification / …ForTokenClassification). Save the student "
        "with model.save_pretrained() after training it with a classification head."
    )
