"""`StudentWithProjections`: the one module the Trainer trains, checkpoints and resumes.

The student plus the projections onto the teacher's width live in one module so that DDP syncs the
projections' gradients, the optimizer sees them, and they run inside ``forward`` (where DDP's
unused-parameter search finds them). Its state dict is laid out like the plain student's, with the
projections under `PROJECTION_PREFIX`, so the Trainer's own checkpoint saving, resuming and
best-model loading work through public `state_dict`/`load_state_dict` with no private hooks.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn
from torch.nn.modules.module import _IncompatibleKeys
from transformers import PreTrainedModel

PROJECTION_PREFIX = "distillation_projections."
"""State-dict prefix of the width projections: present in checkpoints, never in a saved student."""


class StudentWithProjections(nn.Module):
    """The student, the projections onto the teacher's width, and the student's forward signature."""

    _keys_to_ignore_on_save = None
    """Read by the Trainer after loading a checkpoint; a plain module has no tied weights to restore."""

    def __init__(
        self,
        student: PreTrainedModel,
        projections: nn.ModuleDict,
        hidden_pairs: Sequence[tuple[int, int]],
        want_attentions: bool,
        extra_inputs: Sequence[str] = (),
    ):
        super().__init__()
        self.student = student
        self.projections = projections
        self.hidden_pairs = list(hidden_pairs)
        self.want_attentions = want_attentions
        # The Trainer keeps the dataset columns that `model.forward` names (remove_unused_columns):
        # show it the student's parameters rather than this wrapper's catch-all **inputs, plus the
        # `extra_inputs` (cached teacher outputs) that `DistillationTrainer.compute_loss` takes out again.
        forward = functools.partial(StudentWithProjections.distillation_forward, self)
        forward.__signature__ = _with_keyword_inputs(
            inspect.signature(student.forward), ["return_distillation_states", *extra_inputs]
        )
        self.forward = forward

    @property
    def config(self):
        return self.student.config

    @property
    def main_input_name(self) -> str:
        return self.student.main_input_name

    def floating_point_ops(self, inputs, exclude_embeddings: bool = True) -> int:
        return self.student.floating_point_ops(inputs, exclude_embeddings)

    def gradient_checkpointing_enable(self, **kwargs):
        self.student.gradient_checkpointing_enable(**kwargs)

    def distillation_forward(self, return_distillation_states: bool = False, **inputs):
        """The student's output; with ``return_distillation_states``, a dict that adds the matched states.

        A plain dict (not a new attribute or key on the ModelOutput) survives DDP, which rebuilds
        ModelOutputs from their declared fields.
        """
        if not return_distillation_states:
            return self.student(**inputs)
        outputs = self.student(
            **inputs,
            output_hidden_states=bool(self.hidden_pairs),
            output_attentions=self.want_attentions,
            return_dict=True,
        )
        matched = []
        for index, (student_index, _) in enumerate(self.hidden_pairs):
            state = outputs.hidden_states[student_index]
            matched.append(self.projections[str(index)](state) if len(self.projections) else state)
        return {"outputs": outputs, "matched_hidden_states": tuple(matched)}

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """The student's keys as `save_pretrained` writes them, plus the projections under their prefix."""
        state = self.student.state_dict(prefix=prefix, keep_vars=keep_vars)
        state.update(self.projections.state_dict(prefix=prefix + PROJECTION_PREFIX, keep_vars=keep_vars))
        if destination is None:
            return state
        destination.update(state)
        return destination

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Load a `state_dict`-shaped mapping (or one shard of it: missing keys are reported, not fatal
        unless ``strict``). Keys that belong to neither the student nor the projections always fail,
        because a checkpoint of another model must not load silently as nothing."""
        student_state = {
            key: value for key, value in state_dict.items() if not key.startswith(PROJECTION_PREFIX)
        }
        projection_state = {
            key.removeprefix(PROJECTION_PREFIX): value
            for key, value in state_dict.items()
            if key.startswith(PROJECTION_PREFIX)
        }
        student_result = self.student.load_state_dict(student_state, strict=False, assign=assign)
        projection_result = self.projections.load_state_dict(projection_state, strict=False, assign=assign)
        missing = [
            *student_result.missing_keys,
            *(PROJECTION_PREFIX + k for k in projection_result.missing_keys),
        ]
        unexpected = [
            *student_result.unexpected_keys,
            *(PROJECTION_PREFIX + k for k in projection_result.unexpected_keys),
        ]
        if unexpected or (strict and missing):
            raise RuntimeError(
                f"checkpoint does not match the student ({type(self.student).__name__}): "
                f"unexpected keys {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}, "
                f"missing keys {missing[:8]}{'...' if len(missing) > 8 else ''}. Resume with the same "
                "student architecture and distillation settings (hidden_weight, layer_map) as the checkpoint."
            )
        return _IncompatibleKeys(missing, unexpected)


def _with_keyword_inputs(signature: inspect.Signature, names: Sequence[str]) -> inspect.Signature:
    """The student's signature plus keyword-only parameters ``names`` (before any ``**kwargs``)."""
    parameters = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in names]
    variadic = [p for p in signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    return signature.replace(parameters=[*parameters, *added, *variadic])


def make_projections(student: PreTrainedModel, teacher: PreTrainedModel, num_pairs: int) -> nn.ModuleDict:
    """One linear map per matched hidden state from the student's width to the teacher's (none if equal)."""
    student_width, teacher_width = student.config.hidden_size, teacher.config.hidden_size
    if not num_pairs or student_width == teacher_width:
        return nn.ModuleDict()
    return nn.ModuleDict(
        {str(index): nn.Linear(student_width, teacher_width) for index in range(num_pairs)}
    ).to(student.device)
