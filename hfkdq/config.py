"""`DistillationArguments`: every `TrainingArguments` flag, plus what distillation needs.

Subclassing `TrainingArguments` keeps `HfArgumentParser`, YAML/JSON configs, `accelerate launch`
and every Trainer flag working unchanged; the distillation knobs sit beside them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from transformers import TrainingArguments

from hfkdq.layer_map import parse_layer_spec

LOSS_WEIGHT_NAMES = ("ce_weight", "kd_weight", "hidden_weight", "attention_weight")


@dataclass
class DistillationArguments(TrainingArguments):
    temperature: float = field(
        default=2.0, metadata={"help": "Softmax temperature of the logit KD term (> 0)."}
    )
    ce_weight: float = field(default=1.0, metadata={"help": "Weight of cross-entropy on the gold labels."})
    kd_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of KL(student/T || teacher/T)·T² (MSE to the teacher for regression)."},
    )
    hidden_weight: float = field(
        default=0.0, metadata={"help": "Weight of the hidden-state loss over the layer map (0 = off)."}
    )
    attention_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the attention-distribution KL over the layer map (0 = off)."},
    )
    hidden_loss: str = field(default="mse", metadata={"help": "Hidden-state distance: 'mse' or 'cosine'."})
    layer_map: str = field(
        default="uniform",
        metadata={"help": "Student->teacher layers: 'uniform', 'last', or teacher layers such as '1,3,5'."},
    )
    match_embeddings: bool = field(
        default=True,
        metadata={"help": "Also match the embedding outputs (layer -1 of both) in the hidden-state loss."},
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
    weights = {name: getattr(args, name) for name in LOSS_WEIGHT_NAMES}
    negative = {name: value for name, value in weights.items() if not math.isfinite(value) or value < 0}
    if negative:
        raise ValueError(f"loss weights must be finite and >= 0, got {negative}")
    if all(value == 0 for value in weights.values()):
        raise ValueError(
            f"all loss weights are 0 ({', '.join(LOSS_WEIGHT_NAMES)}): nothing would be learned; "
            "set ce_weight=1 for plain fine-tuning or kd_weight>0 to distill"
        )
    if args.hidden_loss not in ("mse", "cosine"):
        raise ValueError(f"hidden_loss must be 'mse' or 'cosine', got {args.hidden_loss!r}")
    parse_layer_spec(args.layer_map)
