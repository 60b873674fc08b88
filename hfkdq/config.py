"""`DistillationArguments`: every `TrainingArguments` flag, plus what distillation needs.

Subclassing `TrainingArguments` keeps `HfArgumentParser`, YAML/JSON configs, `accelerate launch`
and every Trainer flag working unchanged; the distillation knobs sit beside them. The loss weights,
their defaults and help, and their validation come from the table in `hfkdq.loss_terms`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from transformers import TrainingArguments

from hfkdq.layer_map import parse_layer_spec
from hfkdq.loss_terms import LOSS_TERMS, WEIGHT_FIELDS, hidden_loss_help
from hfkdq.losses import HIDDEN_DISTANCES
from hfkdq.validation import check_training_sizes


def _weight_field(term_name: str):
    term = LOSS_TERMS[term_name]
    return field(default=term.default_weight, metadata={"help": term.help})


@dataclass
class DistillationArguments(TrainingArguments):
    temperature: float = field(
        default=2.0, metadata={"help": "Softmax temperature of the logit KD term (> 0)."}
    )
    ce_weight: float = _weight_field("ce")
    kd_weight: float = _weight_field("kd")
    hidden_weight: float = _weight_field("hidden")
    attention_weight: float = _weight_field("attention")
    hidden_loss: str = field(default="mse", metadata={"help": hidden_loss_help()})
    layer_map: str = field(
        default="uniform",
        metadata={"help": "Student->teacher layers: 'uniform', 'last', or teacher layers such as '1,3,5'."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Replace a finished run in output_dir (its results.json); without it such a run is kept."
        },
    )
    match_embeddings: bool = field(
        default=True,
        metadata={"help": "Also match the embedding outputs (layer -1 of both) in the hidden-state loss."},
    )
    teacher_bf16: bool = field(
        default=False,
        metadata={
            "help": "Run the frozen teacher in bfloat16 (a bf16 copy; the soft targets go back to float32). "
            "About 2x cheaper per teacher pass on CPUs with AVX512-BF16/AMX and on GPUs; slower where "
            "bf16 is emulated. The student still trains in float32."
        },
    )

    def __post_init__(self):
        if _cpu_only_multi_process_launch() and not self.use_cpu:
            # `accelerate launch --multi_gpu --num_processes N` on a machine without GPUs starts N
            # processes and a gloo group, but the Trainer only runs DDP on CPU when told so; without
            # this each process would train alone on the whole dataset.
            self.use_cpu = True
        super().__post_init__()
        validate_distillation_settings(self)


def _cpu_only_multi_process_launch() -> bool:
    import torch

    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def validate_distillation_settings(args) -> None:
    """Reject settings that would train silently wrong, with a message that names the fix."""
    if (
        not (isinstance(args.temperature, (int, float)) and math.isfinite(args.temperature))
        or args.temperature <= 0
    ):
        raise ValueError(f"temperature must be a finite number > 0, got {args.temperature!r}")
    weights = {name: getattr(args, name) for name in WEIGHT_FIELDS}
    invalid = {
        name: value
        for name, value in weights.items()
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0
    }
    if invalid:
        raise ValueError(f"loss weights must be finite numbers >= 0, got {invalid}")
    if all(value == 0 for value in weights.values()):
        raise ValueError(
            f"all loss weights are 0 ({', '.join(WEIGHT_FIELDS)}): nothing would be learned; "
            "set ce_weight=1 for plain fine-tuning or kd_weight>0 to distill"
        )
    if args.hidden_loss not in HIDDEN_DISTANCES:
        raise ValueError(
            f"hidden_loss must be one of {', '.join(map(repr, HIDDEN_DISTANCES))}, got {args.hidden_loss!r}"
        )
    parse_layer_spec(args.layer_map)
    check_training_sizes(args)
    check_supported_parallelism(args)


def check_supported_parallelism(args) -> None:
    """FSDP and DeepSpeed shard or wrap the student and are not tested with a frozen teacher beside it."""
    if getattr(args, "fsdp", None):
        raise ValueError(
            "DistillationTrainer does not support FSDP yet (--fsdp is set): the teacher would not be sharded "
            "and checkpoints would not hold a plain student. Use DDP (accelerate launch --multi_gpu) instead."
        )
    if getattr(args, "deepspeed", None):
        raise ValueError(
            "DistillationTrainer does not support DeepSpeed yet (--deepspeed is set): the teacher would not be "
            "placed by DeepSpeed and checkpoints would not hold a plain student. Use DDP (accelerate launch "
            "--multi_gpu) instead."
        )
