"""The recipes' own flags, one dataclass per concern, read by the module that uses them.

`TeacherArguments` (hfkdq.teacher), `StudentArguments` (the student and the plain baseline),
`TransferArguments` (augmentation and transfer data), `QuantizationArguments` (--quantize and the
quality gate). `ModelArguments` joins them into the one flat dataclass that `HfArgumentParser` reads,
so every recipe flag and YAML key stays what it was: `--teacher_name_or_path`, `--quantize`, ...
Publishing uses transformers' own `--push_to_hub --hub_model_id --hub_token --hub_private_repo`
(`DistillationArguments`), gated by `--max_metric_drop`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hfkdq.student_init import DEFAULT_STUDENT_INIT, DEFAULT_STUDENT_NUM_LAYERS, init_help
from hfkdq.validation import (
    check_count,
    check_max_metric_drop,
    check_positive_number,
    check_share,
    check_teacher_settings,
)


@dataclass
class TeacherArguments:
    """The teacher: which model, whether and how it is fine-tuned first, and its stored outputs."""

    teacher_name_or_path: str = field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        metadata={"help": "Fine-tuned teacher, or a base encoder to fine-tune first (Hub id or local path)."},
    )
    teacher_finetune: str = field(
        default="auto",
        metadata={"help": "auto: fine-tune only a teacher without a head for these labels; always; never."},
    )
    teacher_num_train_epochs: float | None = field(
        default=None,
        metadata={
            "help": "Epochs of teacher fine-tuning, > 0 (default: num_train_epochs). To use a teacher as "
            "given, without fine-tuning, pass --teacher_finetune never."
        },
    )
    teacher_max_steps: int | None = field(
        default=None,
        metadata={
            "help": "Cap the teacher's fine-tuning at this many steps, >= 1 (default: none, it trains "
            "--teacher_num_train_epochs). --max_steps caps the student only."
        },
    )
    teacher_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Learning rate of teacher fine-tuning, > 0 (default: learning_rate)."},
    )
    teacher_select_best: bool = field(
        default=True,
        metadata={"help": "Evaluate the teacher every epoch and keep its best epoch on validation."},
    )
    teacher_early_stopping_patience: int = field(
        default=2, metadata={"help": "Stop teacher fine-tuning after this many epochs without improvement."}
    )
    teacher_min_metric: float = field(
        default=0.5,
        metadata={
            "help": "Warn when the teacher's validation metric (0-1) is below this: distilling from it is "
            "unlikely to beat plain fine-tuning."
        },
    )
    teacher_cache: str | None = field(
        default=None,
        metadata={
            "help": "Distill from the teacher's logits stored once in this directory (built when missing; "
            "'auto': <output_dir>/teacher-cache) instead of a teacher pass per step. Only for logit-only "
            "losses without --augment. Transfer data uses 'auto' unless a directory is given."
        },
    )

    def __post_init__(self) -> None:
        check_teacher_settings(self)


@dataclass
class StudentArguments:
    """The student: a smaller encoder, or layers copied from the teacher; and the plain baseline it is compared with."""

    student_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A smaller encoder to use as student instead of copying teacher layers."},
    )
    student_num_layers: int | None = field(
        default=None,
        metadata={
            "help": f"Layers of the student: copied from the teacher (default {DEFAULT_STUDENT_NUM_LAYERS}), or "
            "with --student_name_or_path, kept from that model (default: all of them)."
        },
    )
    student_layers: str = field(default=DEFAULT_STUDENT_INIT, metadata={"help": init_help()})
    compare_plain: bool = field(
        default=False,
        metadata={
            "help": "Also train the same student without distillation (same initialisation, epochs and seed, "
            "CE only, labelled data) and report it beside the distilled one: does distillation pay here?"
        },
    )
    prune_ffn_keep: float | None = field(
        default=None,
        metadata={
            "help": "After distilling, keep this share (0-1] of every layer's FFN neurons, the most important "
            "by --prune_importance on training batches, then recover by distilling again from the same teacher "
            "(from its cache with --teacher_cache: no teacher pass). The result is a stock model with a smaller "
            "intermediate_size; --quantize applies to it. The unpruned student is kept in unpruned-student/."
        },
    )
    prune_importance: str = field(
        default="taylor",
        metadata={
            "help": "How FFN neurons are scored: taylor (activation x gradient), fisher, or magnitude."
        },
    )
    prune_importance_samples: int = field(
        default=512, metadata={"help": "Training examples the importance scores are computed on."}
    )
    prune_recovery_epochs: float | None = field(
        default=None,
        metadata={"help": "Epochs of recovery distillation after pruning (default: num_train_epochs)."},
    )

    def __post_init__(self) -> None:
        # Every pruning flag is checked even without --prune_ffn_keep: a bad value is a mistake either way.
        from hfkdq.pruning import check_ffn_keep, check_importance

        if self.prune_ffn_keep is not None:
            check_ffn_keep(self.prune_ffn_keep)
        check_importance(self.prune_importance)
        check_count("prune_importance_samples", self.prune_importance_samples, allow_none=False)
        if self.prune_recovery_epochs is not None:
            check_positive_number("prune_recovery_epochs", self.prune_recovery_epochs)


@dataclass
class TransferArguments:
    """What the student trains on besides the labelled set: augmented views, or unlabelled text the teacher labels."""

    augment: str | None = field(
        default=None,
        metadata={
            "help": "Train on fresh augmented views that teacher and student both see: 'all' or a list of "
            "mask_o, replace_o, replace_mentions, shuffle_segments (NER), mask_words, ngram (GLUE)."
        },
    )
    augment_probability: float = field(
        default=0.5, metadata={"help": "Share of training examples replaced by an augmented view each epoch."}
    )
    augment_rate: float = field(
        default=0.15, metadata={"help": "Probability that one word is masked or replaced."}
    )
    transfer_file: str | None = field(
        default=None,
        metadata={
            "help": "Unlabeled text the teacher labels for the student: one sentence per line, CoNLL without "
            "tags (NER), JSONL, or a TSV/CSV whose header names the text column(s)."
        },
    )
    transfer_train_remainder: bool = field(
        default=False,
        metadata={
            "help": "Use the training examples that --max_train_samples cuts off as unlabeled transfer data "
            "(their labels are dropped unread), beside or instead of --transfer_file."
        },
    )
    transfer_ratio: float = field(
        default=1.0,
        metadata={
            "help": "At most this many transfer examples per labelled training example (a random sample of "
            "the transfer data when it holds more)."
        },
    )

    def __post_init__(self) -> None:
        check_share("augment_probability", self.augment_probability)
        check_share("augment_rate", self.augment_rate)
        check_positive_number("transfer_ratio", self.transfer_ratio)


@dataclass
class QuantizationArguments:
    """Quantizing the distilled student at the end of the run, and the quality gate its variants (and a push) must pass."""

    quantize: str | None = field(
        default=None,
        metadata={
            "help": "After distilling, quantize the student: e.g. onnx-int8,bnb-8bit,bnb-4bit,torch-int8."
        },
    )
    max_metric_drop: float | None = field(
        default=None,
        metadata={"help": "Fail the run when a quantized variant loses more than this many metric points."},
    )
    mixed_precision: bool = field(
        default=False,
        metadata={
            "help": "With --max_metric_drop and onnx-int8: when full int8 misses the budget, search onnx-int8-mixed, "
            "which keeps the MatMuls int8 hurts most in fp32 until the drop fits."
        },
    )
    latency_repeats: int = field(
        default=20,
        metadata={"help": "Timed forward passes per batch size when the quantized variants are measured."},
    )
    latency_warmup: int = field(
        default=3, metadata={"help": "Untimed forward passes before each latency measurement."}
    )
    quantize_eval_split: str | None = field(
        default=None,
        metadata={
            "help": "The evaluation split every quantized variant is measured on (e.g. test); default: the "
            "first evaluation split (validation)."
        },
    )

    def __post_init__(self) -> None:
        check_max_metric_drop(self.max_metric_drop)
        if self.quantize_eval_split is not None and not self.quantize:
            raise ValueError(
                f"--quantize_eval_split {self.quantize_eval_split} applies only with --quantize: add --quantize "
                "METHODS, or drop it"
            )
        if self.latency_repeats < 1 or self.latency_warmup < 0:
            raise ValueError(
                f"--latency_repeats must be >= 1 and --latency_warmup >= 0; got {self.latency_repeats} "
                f"and {self.latency_warmup}"
            )
        if self.mixed_precision and (
            self.max_metric_drop is None or "onnx-int8" not in (self.quantize or "").split(",")
        ):
            raise ValueError(
                "--mixed_precision searches a variant within --max_metric_drop when onnx-int8 misses it: give "
                "--quantize with onnx-int8 and --max_metric_drop"
            )
        if self.quantize:
            from hfkdq.quantization.registry import parse_methods

            # At argument parsing: an unknown method or a missing backend (e.g. the hfkdq[onnx] extra)
            # fails before any data is tokenized or any model trained.
            parse_methods(self.quantize)


@dataclass
class ModelArguments(QuantizationArguments, TransferArguments, StudentArguments, TeacherArguments):
    """Every group above as one flat dataclass: what `HfArgumentParser` parses beside the data and
    training arguments (fields in order: teacher, student, transfer, quantization). Each stage of
    `hfkdq.pipeline` takes the group it reads; this object is every group at once."""

    def __post_init__(self) -> None:
        for group in ARGUMENT_GROUPS:
            check = group.__dict__.get("__post_init__")
            if check is not None:
                check(self)


ARGUMENT_GROUPS = (TeacherArguments, StudentArguments, TransferArguments, QuantizationArguments)
