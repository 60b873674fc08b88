"""What a teacher and a student must share to be compared, and how to make them comparable.

With a shared tokenizer, distillation feeds both models the same input ids and compares them class
by class, token by token and (for attention) head by head. A student with its own tokenizer reads
its own tokens of the same text (`hfkdq.data.paired`) and is compared class by class and word by
word. A mismatch would train silently wrong, so it fails before training with a message that names
the fix.
"""

from __future__ import annotations

import json

from torch import nn
from transformers import PreTrainedModel

PAIRING_HINT = (
    "give the student its own tokenization of the text with hfkdq.data.paired.pair_features "
    "(the recipes do this for a --student_name_or_path with its own tokenizer)"
)

# Runtime settings of a Rust tokenizer, not how it splits text.
RUNTIME_TOKENIZER_KEYS = ("truncation", "padding", "version")


def same_tokenization(first, second) -> bool:
    """Whether two tokenizers turn any text into the same ids: same vocabulary and the same
    normalisation, splitting and special tokens (a cased and an uncased WordPiece share a vocabulary
    format but not their ids)."""
    if first is second:
        return True
    if first.get_vocab() != second.get_vocab():
        return False
    backends = [getattr(tokenizer, "backend_tokenizer", None) for tokenizer in (first, second)]
    if any(backend is None for backend in backends):  # slow tokenizers: compare what they are built from
        return type(first) is type(second) and first.init_kwargs == second.init_kwargs
    described = [json.loads(backend.to_str()) for backend in backends]
    for description in described:
        for key in RUNTIME_TOKENIZER_KEYS:
            description.pop(key, None)
    return described[0] == described[1]


def check_teacher_student_compatible(
    teacher: PreTrainedModel,
    student: PreTrainedModel,
    teacher_tokenizer=None,
    student_tokenizer=None,
    paired: bool = False,
) -> None:
    """Fail early when teacher and student cannot be compared token by token (or, ``paired``: each
    reading its own tokens, word by word) or class by class."""
    if not paired and teacher.config.vocab_size != student.config.vocab_size:
        raise ValueError(
            f"teacher and student use different vocabularies ({teacher.config.vocab_size} vs "
            f"{student.config.vocab_size} tokens) but the training set holds one tokenization: "
            + PAIRING_HINT
        )
    if not paired and teacher_tokenizer is not None and student_tokenizer is not None:
        if not same_tokenization(teacher_tokenizer, student_tokenizer):
            raise ValueError(
                "teacher and student tokenizers differ but the training set holds one tokenization: "
                + PAIRING_HINT
            )
    if teacher.config.num_labels != student.config.num_labels:
        raise ValueError(
            f"teacher predicts {teacher.config.num_labels} labels but the student {student.config.num_labels}; "
            "build the student with the teacher's label set"
        )
    teacher_labels = {int(k): v for k, v in teacher.config.id2label.items()}
    student_labels = {int(k): v for k, v in student.config.id2label.items()}
    if teacher.config.num_labels > 1 and teacher_labels != student_labels:
        raise ValueError(
            f"teacher id2label {teacher_labels} differs from the student's {student_labels}: logits would be "
            "compared across different classes"
        )


def check_equal_head_counts(student: PreTrainedModel, teacher: PreTrainedModel) -> None:
    """Attention maps are compared head by head."""
    student_heads = student.config.num_attention_heads
    teacher_heads = teacher.config.num_attention_heads
    if student_heads != teacher_heads:
        raise ValueError(
            f"attention loss needs equal head counts, but the student has {student_heads} heads "
            f"and the teacher {teacher_heads}: set attention_weight=0 or build the student with "
            f"{teacher_heads} heads"
        )


def check_cross_tokenizer_terms(args, paired: bool, word_aligned: bool, token_head: bool = False) -> None:
    """Loss terms that have no meaning when teacher and student read different tokens.

    Attention maps are token-by-token matrices, which cannot be paired across two tokenizers; hidden
    states and token logits are compared at aligned words, which sequence tasks do not have.
    """
    if not paired:
        return
    if token_head and not word_aligned:
        raise ValueError(
            "a token-classification student with its own tokenizer is compared word by word, and this training "
            "set has no word positions: build it with hfkdq.data.paired.pair_features(..., token_level=True)"
        )
    if args.attention_weight > 0:
        raise ValueError(
            "the attention loss compares token-by-token attention maps, which do not line up across two "
            "tokenizers: set --attention_weight 0, or use a student that shares the teacher's tokenizer"
        )
    if args.hidden_weight > 0 and not word_aligned:
        raise ValueError(
            "the hidden-state loss across two tokenizers compares words, and a sequence task has no word "
            "alignment: set --hidden_weight 0, or use a student that shares the teacher's tokenizer"
        )


def prepare_for_attention_distillation(student: PreTrainedModel, teacher: PreTrainedModel) -> None:
    """Both models must return attention probabilities, and the student's must stay distributions."""
    for network in (student, teacher):
        use_eager_attention(network)
    disable_attention_dropout(student)


def use_eager_attention(model: PreTrainedModel) -> None:
    """Attention probabilities are only returned by the eager implementation (not SDPA/flash)."""
    if getattr(model, "_supports_attention_backend", False):
        model.set_attn_implementation("eager")
    else:  # transformers 4.x BERT picks its attention class at build time and falls back to eager itself
        model.config._attn_implementation = "eager"


def disable_attention_dropout(model: nn.Module) -> None:
    """Dropout on attention probabilities zeroes and rescales them, so they stop being distributions.

    The attention KL compares distributions; MiniLM/TinyBERT compare the probabilities before
    dropout, which HF models do not return, so the student trains without attention dropout.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.Dropout) and "attention" in name and ".output." not in name:
            module.p = 0.0
    if hasattr(model.config, "attention_probs_dropout_prob"):
        model.config.attention_probs_dropout_prob = 0.0
