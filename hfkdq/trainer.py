"""`DistillationTrainer`: a `transformers.Trainer` whose loss learns from a frozen teacher.

Only `compute_loss` and the save/load hooks are overridden; the training loop, mixed precision,
`accelerate`/DDP, logging and checkpoint rotation stay the Trainer's own, so new transformers
releases keep working (forked loops, as in optimum-intel's trainers, broke on every release).
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from collections import defaultdict

import safetensors.torch
import torch
from torch import nn
from transformers import PreTrainedModel, Trainer
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.utils import find_labels

from hfkdq.config import DistillationArguments, validate_distillation_settings
from hfkdq.layer_map import resolve_layer_map
from hfkdq.losses import attention_loss, hidden_state_loss, kd_loss, regression_kd_loss

logger = logging.getLogger(__name__)

PROJECTIONS_NAME = "distillation_projections.safetensors"
"""Checkpoint file of the learned width projections; written in checkpoints only, never beside the student."""


class StudentWithProjections(nn.Module):
    """What the Trainer trains: the student plus the projections onto the teacher's width.

    One module means DDP syncs the projections' gradients, the optimizer and checkpoints see them,
    and they run inside ``forward`` (so DDP's unused-parameter search finds them), while
    `DistillationTrainer.save_model` still writes the student alone.
    """

    def __init__(self, student: PreTrainedModel, projections: nn.ModuleDict, hidden_pairs, want_attentions):
        super().__init__()
        self.student = student
        self.projections = projections
        self.hidden_pairs = list(hidden_pairs)
        self.want_attentions = want_attentions

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

    def forward(self, return_distillation_states: bool = False, **inputs):
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


class DistillationTrainer(Trainer):
    """Trainer for a student under a frozen teacher; every `TrainingArguments` flag still applies.

    loss = ce_weight·CE + kd_weight·KL(student/T || teacher/T)·T² + hidden_weight·hidden-state loss
           + attention_weight·attention KL, each term masked to real tokens (and, for token
           classification, to labelled positions) and logged separately as ``loss_<term>``.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        teacher_model: PreTrainedModel,
        args: DistillationArguments,
        teacher_processing_class=None,
        **kwargs,
    ):
        validate_distillation_settings(args)
        check_teacher_student_compatible(
            teacher_model, model, teacher_processing_class, kwargs.get("processing_class")
        )
        self.teacher = teacher_model
        self.is_regression = model.config.num_labels == 1
        self.layer_pairs = self._resolve_layer_pairs(model, teacher_model, args)
        self.hidden_pairs = self._hidden_pairs(args) if args.hidden_weight > 0 else []
        if args.attention_weight > 0:
            for network in (model, teacher_model):
                use_eager_attention(network)
            disable_attention_dropout(model)
        wrapper = StudentWithProjections(
            model,
            self._make_projections(model, teacher_model, self.hidden_pairs),
            self.hidden_pairs,
            args.attention_weight > 0,
        )
        super().__init__(model=wrapper, args=args, **kwargs)
        if self.args.label_names is None:
            self.label_names = find_labels(type(model))
        # The wrapper's forward takes **inputs; without this the Trainer would skip dividing the
        # loss by the gradient-accumulation steps.
        self.model_accepts_loss_kwargs = False
        self.teacher.to(self.args.device)
        self.teacher.eval()
        self.teacher.requires_grad_(False)
        self._term_totals: dict[str, torch.Tensor] = defaultdict(
            lambda: torch.zeros((), device=self.args.device)
        )
        self._term_steps = 0
        self._saving_checkpoint = False

    @property
    def student(self) -> PreTrainedModel:
        return self.accelerator.unwrap_model(self.model).student

    # ----- setup helpers -------------------------------------------------------------------------
    @staticmethod
    def _resolve_layer_pairs(student, teacher, args) -> list[tuple[int, int]]:
        if args.hidden_weight == 0 and args.attention_weight == 0:
            return []
        pairs = resolve_layer_map(
            args.layer_map, student.config.num_hidden_layers, teacher.config.num_hidden_layers
        )
        if args.attention_weight > 0:
            student_heads = student.config.num_attention_heads
            teacher_heads = teacher.config.num_attention_heads
            if student_heads != teacher_heads:
                raise ValueError(
                    f"attention loss needs equal head counts, but the student has {student_heads} heads "
                    f"and the teacher {teacher_heads}: set attention_weight=0 or build the student with "
                    f"{teacher_heads} heads"
                )
        return pairs

    def _hidden_pairs(self, args) -> list[tuple[int, int]]:
        """Indices into ``hidden_states`` (0 = embeddings, k + 1 = output of block k)."""
        pairs = [(0, 0)] if args.match_embeddings else []
        return pairs + [(s + 1, t + 1) for s, t in self.layer_pairs]

    @staticmethod
    def _make_projections(student, teacher, hidden_pairs) -> nn.ModuleDict:
        student_width, teacher_width = student.config.hidden_size, teacher.config.hidden_size
        if not hidden_pairs or student_width == teacher_width:
            return nn.ModuleDict()
        return nn.ModuleDict(
            {str(index): nn.Linear(student_width, teacher_width) for index in range(len(hidden_pairs))}
        ).to(student.device)

    def _set_signature_columns_if_needed(self):
        # Columns are those the student accepts, not the wrapper's catch-all **inputs.
        if self._signature_columns is None:
            parameters = list(inspect.signature(self.student.forward).parameters)
            self._signature_columns = list(
                dict.fromkeys(parameters + ["label", "label_ids"] + self.label_names)
            )

    # ----- the loss ------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        args = self.args
        labels = inputs.get("labels")
        student_states = model(**inputs, return_distillation_states=True)
        outputs = student_states["outputs"]
        teacher_inputs = {key: value for key, value in inputs.items() if key != "labels"}
        with torch.no_grad():
            teacher_outputs = self.teacher(
                **teacher_inputs,
                output_hidden_states=args.hidden_weight > 0,
                output_attentions=args.attention_weight > 0,
                return_dict=True,
            )

        token_mask = self._token_mask(inputs, labels, outputs.logits)
        is_token_task = outputs.logits.dim() == 3
        terms: dict[str, torch.Tensor] = {}
        if args.ce_weight > 0:
            if outputs.loss is None:
                raise ValueError("ce_weight > 0 needs gold labels in the batch (a 'labels' column)")
            terms["ce"] = outputs.loss
        if args.kd_weight > 0:
            if self.is_regression:
                terms["kd"] = regression_kd_loss(outputs.logits, teacher_outputs.logits)
            else:
                terms["kd"] = kd_loss(
                    outputs.logits,
                    teacher_outputs.logits,
                    args.temperature,
                    token_mask if is_token_task else None,
                )
        if args.hidden_weight > 0:
            hidden_terms = [
                hidden_state_loss(
                    student_state, teacher_outputs.hidden_states[t], token_mask, args.hidden_loss
                )
                for student_state, (_, t) in zip(
                    student_states["matched_hidden_states"], self.hidden_pairs, strict=True
                )
            ]
            terms["hidden"] = torch.stack(hidden_terms).mean()
        if args.attention_weight > 0:
            attention_terms = [
                attention_loss(outputs.attentions[s], teacher_outputs.attentions[t], token_mask)
                for s, t in self.layer_pairs
            ]
            terms["attention"] = torch.stack(attention_terms).mean()

        weights = {"ce": args.ce_weight, "kd": args.kd_weight, "hidden": args.hidden_weight}
        weights["attention"] = args.attention_weight
        loss = sum(weights[name] * value for name, value in terms.items())
        self._check_finite(loss, terms)
        if model.training:
            for name, value in terms.items():
                self._term_totals[name] += value.detach().float()
            self._term_steps += 1

        if return_outputs:
            # Only the logits go back to the evaluation loop; hidden states would be gathered as predictions.
            return loss, type(outputs)(loss=loss, logits=outputs.logits)
        return loss

    @staticmethod
    def _token_mask(inputs, labels, logits) -> torch.Tensor | None:
        """Positions every term counts: real tokens, and for token classification labelled ones."""
        attention_mask = inputs.get("attention_mask")
        mask = attention_mask.bool() if attention_mask is not None else None
        if logits.dim() == 3 and labels is not None:
            labelled = labels != -100
            mask = labelled if mask is None else mask & labelled
        return mask

    def _check_finite(self, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        if not torch.isfinite(loss.detach()).item():
            values = ", ".join(f"{name}={value.detach().item():.6g}" for name, value in terms.items())
            raise FloatingPointError(
                f"non-finite distillation loss at step {self.state.global_step}: loss={loss.item()} ({values}). "
                "Lower the learning rate, check the inputs, or train in fp32."
            )

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """Adds the mean of each loss term since the last training log, averaged over processes."""
        if "loss" in logs and self._term_steps:
            names = sorted(self._term_totals)
            means = torch.stack([self._term_totals[name] for name in names]) / self._term_steps
            means = (
                self.accelerator.reduce(means, reduction="mean")
                if self.accelerator.num_processes > 1
                else means
            )
            for name, value in zip(names, means.tolist(), strict=True):
                logs[f"loss_{name}"] = round(value, 4) if math.isfinite(value) else value
            self._term_totals.clear()
            self._term_steps = 0
        super().log(logs, *args, **kwargs)

    # ----- saving and loading --------------------------------------------------------------------
    def _save_checkpoint(self, model, trial):
        self._saving_checkpoint = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._saving_checkpoint = False

    def _save(self, output_dir: str | None = None, state_dict=None):
        """Writes the plain student (+ tokenizer); checkpoints also get the projections."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        wrapper = self.accelerator.unwrap_model(self.model)
        # transformers 5 always writes safetensors and dropped the flag.
        serialization = {}
        if hasattr(self.args, "save_safetensors"):
            serialization["safe_serialization"] = self.args.save_safetensors
        wrapper.student.save_pretrained(output_dir, **serialization)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))
        if self._saving_checkpoint and len(wrapper.projections):
            state = {
                key: value.detach().contiguous().cpu()
                for key, value in wrapper.projections.state_dict().items()
            }
            safetensors.torch.save_file(state, os.path.join(output_dir, PROJECTIONS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        wrapper = self.accelerator.unwrap_model(model if model is not None else self.model)
        load_student_weights(wrapper.student, resume_from_checkpoint)
        if len(wrapper.projections):
            path = os.path.join(resume_from_checkpoint, PROJECTIONS_NAME)
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{path} is missing: this checkpoint has no distillation projections to resume from"
                )
            wrapper.projections.load_state_dict(
                safetensors.torch.load_file(path, device=str(self.args.device))
            )

    def _load_best_model(self):
        logger.info("Loading best student from %s", self.state.best_model_checkpoint)
        self._load_from_checkpoint(self.state.best_model_checkpoint)


def load_student_weights(student: PreTrainedModel, checkpoint_dir: str) -> None:
    """Load a checkpoint's student weights in place (single-file or sharded, safetensors or bin)."""
    single = [
        name
        for name in ("model.safetensors", "pytorch_model.bin")
        if os.path.isfile(os.path.join(checkpoint_dir, name))
    ]
    if not single:
        from transformers.modeling_utils import load_sharded_checkpoint  # transformers 4.x location

        load_sharded_checkpoint(student, checkpoint_dir, strict=True)
        return
    path = os.path.join(checkpoint_dir, single[0])
    if path.endswith(".safetensors"):
        state = safetensors.torch.load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = student.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(
            f"checkpoint {checkpoint_dir} does not match the student: missing {missing}, unexpected {unexpected}"
        )


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


def check_teacher_student_compatible(
    teacher, student, teacher_tokenizer=None, student_tokenizer=None
) -> None:
    """Fail early when teacher and student cannot be compared token by token or class by class."""
    if teacher.config.vocab_size != student.config.vocab_size:
        raise ValueError(
            f"teacher and student use different vocabularies ({teacher.config.vocab_size} vs "
            f"{student.config.vocab_size} tokens): distillation feeds both the same input ids, so the "
            "student must share the teacher's tokenizer"
        )
    if teacher_tokenizer is not None and student_tokenizer is not None:
        if teacher_tokenizer.get_vocab() != student_tokenizer.get_vocab():
            raise ValueError(
                "teacher and student tokenizers differ: distillation feeds both the same input ids; "
                "use the teacher's tokenizer for the student"
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
