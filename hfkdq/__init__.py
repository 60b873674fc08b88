"""hfkdq: distill a fine-tuned BERT-style teacher into a small student, quantize it, and measure both.

The public API is imported lazily so `import hfkdq` stays fast and optional backends
(onnxruntime, bitsandbytes) are only needed when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "DistillationArguments": "hfkdq.config",
    "DistillationTrainer": "hfkdq.trainer",
    "StudentWithProjections": "hfkdq.distillation_model",
    "make_student": "hfkdq.students",
    "load_student": "hfkdq.students",
    "resolve_layer_map": "hfkdq.layer_map",
    "kd_loss": "hfkdq.losses",
    "hidden_state_loss": "hfkdq.losses",
    "attention_loss": "hfkdq.losses",
    "regression_kd_loss": "hfkdq.losses",
}

__all__ = [
    "DistillationArguments",
    "DistillationTrainer",
    "StudentWithProjections",
    "attention_loss",
    "hidden_state_loss",
    "kd_loss",
    "load_student",
    "make_student",
    "regression_kd_loss",
    "resolve_layer_map",
]

if TYPE_CHECKING:  # pragma: no cover
    from hfkdq.config import DistillationArguments
    from hfkdq.distillation_model import StudentWithProjections
    from hfkdq.layer_map import resolve_layer_map
    from hfkdq.losses import attention_loss, hidden_state_loss, kd_loss, regression_kd_loss
    from hfkdq.students import load_student, make_student
    from hfkdq.trainer import DistillationTrainer


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hfkdq' has no attribute {name!r}")
