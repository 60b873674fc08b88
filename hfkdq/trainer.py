"""`DistillationTrainer`: a `transformers.Trainer` whose loss learns from a frozen teacher.

It overrides public methods only (`compute_loss`, `log`, `save_model`); the training loop, mixed
precision, `accelerate`/DDP, checkpoint rotation, resuming and best-model loading stay the
Trainer's own, so new transformers releases keep working (optimum-intel's trainers forked the loop
and overrode private hooks, and broke on every release until they were deleted).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
from collections import defaultdict
from pathlib import Path

import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding, PreTrainedModel, Trainer, default_data_collator
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import find_labels

from hfkdq.augment import LABEL_IS_GOLD
from hfkdq.compatibility import check_cross_tokenizer_terms, check_teacher_student_compatible
from hfkdq.config import DistillationArguments, check_supported_parallelism, validate_distillation_settings
from hfkdq.data.paired import (
    PAIRED_COLUMNS,
    STUDENT_WORD_POSITIONS,
    TEACHER_INPUT_COLUMNS,
    TEACHER_PREFIX,
    TEACHER_WORD_POSITIONS,
    PairedCollator,
    is_paired,
)
from hfkdq.data.word_alignment import aligned_mask, to_student_frame
from hfkdq.distillation_model import StudentWithProjections, make_projections
from hfkdq.heads import IGNORE_INDEX, head_of_architectures
from hfkdq.layer_map import resolve_layer_map
from hfkdq.loss_terms import DistillationBatch, active_terms, teacher_outputs_needed
from hfkdq.teacher_cache import CachedTeacherCollator, TeacherOutputCache, cached_teacher_logits

logger = logging.getLogger(__name__)

UNSUPPORTED_DISTRIBUTED_TYPES = ("FSDP", "DEEPSPEED", "MEGATRON_LM", "XLA")


class DistillationTrainer(Trainer):
    """Trainer for a student under a frozen teacher; every `TrainingArguments` flag still applies.

    loss = Σ weight·term over the rows of `hfkdq.loss_terms.LOSS_TERMS` with a weight > 0 (CE on
    gold labels, KL(teacher/T || student/T)·T², hidden-state and attention losses), each masked to
    real (and, for token classification, labelled) tokens and logged as ``loss_<term>``. The
    teacher runs only when an active term reads it, and never in evaluation, where the student's
    own task loss is reported so that ``metric_for_best_model="eval_loss"`` means what it means for
    a plain model.

    A student with its own tokenizer trains on a paired set (`hfkdq.data.paired.pair_features`):
    its own features plus the teacher's tokens of the same text. The teacher reads its tokens, the
    student its own; token tasks compare them word by word (each word's first sub-token on both
    sides, `hfkdq.data.word_alignment`), sequence tasks per example.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        teacher_model: PreTrainedModel,
        args: DistillationArguments,
        teacher_processing_class=None,
        teacher_cache: TeacherOutputCache | str | os.PathLike | None = None,
        **kwargs,
    ):
        validate_distillation_settings(args)
        self.paired = is_paired(kwargs.get("train_dataset"))
        check_teacher_student_compatible(
            teacher_model, model, teacher_processing_class, kwargs.get("processing_class"), self.paired
        )
        check_cross_tokenizer_terms(
            args,
            self.paired,
            TEACHER_WORD_POSITIONS in (kwargs["train_dataset"].column_names if self.paired else ()),
            head_of_architectures([type(model).__name__]) == "token",
        )
        self.teacher = teacher_model
        self.terms = active_terms(args)
        self.teacher_outputs = teacher_outputs_needed(self.terms)
        self.num_labels = model.config.num_labels
        self.is_regression = self.num_labels == 1
        for term in self.terms:
            if term.check_models is not None:
                term.check_models(model, teacher_model)
            if term.prepare_models is not None:
                term.prepare_models(model, teacher_model)
        uses_layers = any(term.uses_layer_map for term in self.terms)
        self.layer_pairs = (
            resolve_layer_map(
                args.layer_map, model.config.num_hidden_layers, teacher_model.config.num_hidden_layers
            )
            if uses_layers
            else []
        )
        self.hidden_pairs = self._hidden_pairs(args) if "hidden_states" in self.teacher_outputs else []
        if self.paired:
            self._pair_collator(teacher_model, teacher_processing_class, kwargs)
        self.teacher_cache = None
        if teacher_cache is not None:
            self.teacher_cache = self._use_teacher_cache(teacher_cache, teacher_model, kwargs)
        wrapper = StudentWithProjections(
            model,
            make_projections(model, teacher_model, len(self.hidden_pairs)),
            self.hidden_pairs,
            "attentions" in self.teacher_outputs,
            extra_inputs=(
                LABEL_IS_GOLD,
                *(PAIRED_COLUMNS if self.paired else ()),
                *(self.teacher_cache.columns if self.teacher_cache else ()),
            ),
        )
        super().__init__(model=wrapper, args=args, **kwargs)
        if self.accelerator.distributed_type.name in UNSUPPORTED_DISTRIBUTED_TYPES:
            raise ValueError(
                f"DistillationTrainer does not support {self.accelerator.distributed_type.name} yet; "
                "use DDP (accelerate launch --multi_gpu) or a single process"
            )
        check_supported_parallelism(self.args)
        if self.args.label_names is None:
            self.label_names = find_labels(type(model))
        # compute_loss divides every term by the Trainer's `num_items_in_batch` (labelled items in the
        # whole accumulation window), so the Trainer must count them and not divide again.
        self.model_accepts_loss_kwargs = True
        self.teacher.to(self.args.device)
        self.teacher.eval()
        self.teacher.requires_grad_(False)
        if self.args.teacher_bf16 and self.teacher_outputs and self.teacher_cache is None:
            # A copy: the caller's teacher (evaluated, saved, fingerprinted for caches) stays float32.
            self.teacher = copy.deepcopy(self.teacher).to(torch.bfloat16)
        self._term_totals: dict[str, torch.Tensor] = defaultdict(
            lambda: torch.zeros((), device=self.args.device)
        )
        self._terms_logged_at_step = 0

    @property
    def student(self) -> PreTrainedModel:
        return self.accelerator.unwrap_model(self.model).student

    @staticmethod
    def _use_teacher_cache(cache, teacher, trainer_kwargs) -> TeacherOutputCache:
        """Check the cache against this teacher and training set, attach its columns, pad them in the collator."""
        cache = cache if isinstance(cache, TeacherOutputCache) else TeacherOutputCache.load(cache)
        if trainer_kwargs.get("train_dataset") is None:
            raise ValueError("teacher_cache needs the train_dataset it was built for")
        if not isinstance(trainer_kwargs["train_dataset"], Dataset):
            raise ValueError(
                "teacher_cache holds the teacher's outputs for a fixed training set; augmented views change every "
                "epoch and need the live teacher: drop teacher_cache (or --augment)"
            )
        trainer_kwargs["train_dataset"] = cache.attach(teacher, trainer_kwargs["train_dataset"])
        collator = trainer_kwargs.get("data_collator")
        if collator is None:
            processing_class = trainer_kwargs.get("processing_class")
            collator = (
                DataCollatorWithPadding(processing_class) if processing_class else default_data_collator
            )
        trainer_kwargs["data_collator"] = CachedTeacherCollator(collator, cache.columns)
        return cache

    def _pair_collator(self, teacher, teacher_processing_class, trainer_kwargs) -> None:
        """Pad the teacher's own tokens beside the student's, with the teacher's pad id."""
        pad_id = getattr(teacher_processing_class, "pad_token_id", None)
        if pad_id is None:
            pad_id = getattr(teacher.config, "pad_token_id", None) or 0
        collator = trainer_kwargs.get("data_collator")
        if collator is None:
            processing_class = trainer_kwargs.get("processing_class")
            collator = (
                DataCollatorWithPadding(processing_class) if processing_class else default_data_collator
            )
        trainer_kwargs["data_collator"] = PairedCollator(collator, pad_id)

    def _hidden_pairs(self, args) -> list[tuple[int, int]]:
        """Indices into ``hidden_states`` (0 = embeddings, k + 1 = output of block k)."""
        pairs = [(0, 0)] if args.match_embeddings else []
        return pairs + [(s + 1, t + 1) for s, t in self.layer_pairs]

    # ----- the loss ------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        cached_logits = cached_teacher_logits(inputs, self.num_labels)
        label_is_gold = inputs.pop(LABEL_IS_GOLD, None)
        paired = {column: inputs.pop(column) for column in PAIRED_COLUMNS if column in inputs}
        if not model.training:
            # Evaluation reports the student's own task loss and runs no teacher (as ModelOpt's KDTrainer).
            outputs = model(**inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss

        student_states = model(**inputs, return_distillation_states=True)
        outputs = student_states["outputs"]
        batch = self._distillation_batch(inputs, student_states, num_items_in_batch, cached_logits, paired)
        if label_is_gold is not None:
            batch = dataclasses.replace(batch, label_is_gold=label_is_gold)
        terms = {term.name: term.compute(batch) for term in self.terms}
        loss = sum(getattr(self.args, term.weight_field) * terms[term.name] for term in self.terms)
        if num_items_in_batch is not None and self.args.average_tokens_across_devices:
            # num_items_in_batch counts every process's items, and DDP averages gradients over processes.
            loss = loss * self.accelerator.num_processes
            terms = {name: value * self.accelerator.num_processes for name, value in terms.items()}
        self._check_finite(loss, terms, batch)
        scale = 1.0 if num_items_in_batch is not None else 1.0 / self.current_gradient_accumulation_steps
        for name, value in terms.items():
            self._term_totals[name] += value.detach().float() * scale

        if return_outputs:
            # Only the logits go back; hidden states would be gathered as predictions.
            return loss, type(outputs)(loss=loss, logits=outputs.logits)
        return loss

    def _distillation_batch(
        self, inputs, student_states, num_items_in_batch, cached_logits, paired=None
    ) -> DistillationBatch:
        outputs = student_states["outputs"]
        labels = inputs.get("labels")
        attention_mask = inputs.get("attention_mask")
        token_level = outputs.logits.dim() == 3
        token_mask = attention_mask.bool() if attention_mask is not None else None
        if token_level and labels is not None:
            labelled = labels != IGNORE_INDEX
            token_mask = labelled if token_mask is None else token_mask & labelled
        if cached_logits is not None and self.teacher_outputs == {"logits"}:
            teacher, teacher_logits = None, cached_logits
        else:
            teacher_inputs = inputs
            if paired:
                teacher_inputs = {
                    column.removeprefix(TEACHER_PREFIX): paired[column]
                    for column in TEACHER_INPUT_COLUMNS
                    if column in paired
                }
            teacher = self._teacher_forward(teacher_inputs)
            teacher_logits = None if teacher is None else teacher.logits
        teacher_hidden = (
            tuple(teacher.hidden_states[t] for _, t in self.hidden_pairs) if self.hidden_pairs else ()
        )
        if paired and token_level:
            # The teacher's outputs at its first sub-token of each word move to the student's first
            # sub-token of the same word; only the words both sides kept are counted.
            length = outputs.logits.shape[1]
            positions = (paired[TEACHER_WORD_POSITIONS], paired[STUDENT_WORD_POSITIONS])
            aligned = aligned_mask(positions[1], length)
            token_mask = aligned if token_mask is None else token_mask & aligned
            if teacher_logits is not None:
                teacher_logits = to_student_frame(teacher_logits, *positions, length)
            teacher_hidden = tuple(to_student_frame(state, *positions, length) for state in teacher_hidden)
        return DistillationBatch(
            student_logits=outputs.logits,
            labels=labels,
            token_mask=token_mask,
            attention_mask=attention_mask,
            token_level=token_level,
            is_regression=self.is_regression,
            num_items=num_items_in_batch,
            temperature=self.args.temperature,
            hidden_loss=self.args.hidden_loss,
            teacher_logits=teacher_logits,
            student_hidden=student_states["matched_hidden_states"],
            teacher_hidden=teacher_hidden,
            student_attentions=tuple(outputs.attentions[s] for s, _ in self.layer_pairs)
            if "attentions" in self.teacher_outputs
            else (),
            teacher_attentions=tuple(teacher.attentions[t] for _, t in self.layer_pairs)
            if "attentions" in self.teacher_outputs
            else (),
        )

    def _teacher_forward(self, inputs):
        """The teacher's outputs that the active terms read, or None when none reads the teacher."""
        if not self.teacher_outputs:
            return None
        teacher_inputs = {key: value for key, value in inputs.items() if key != "labels"}
        with torch.no_grad():
            outputs = self.teacher(
                **teacher_inputs,
                output_hidden_states="hidden_states" in self.teacher_outputs,
                output_attentions="attentions" in self.teacher_outputs,
                return_dict=True,
            )
        if self.args.teacher_bf16:  # the losses compare in float32, as without it
            for name in ("logits", "hidden_states", "attentions"):
                value = getattr(outputs, name, None)
                if isinstance(value, torch.Tensor):
                    outputs[name] = value.float()
                elif value is not None:
                    outputs[name] = tuple(tensor.float() for tensor in value)
        return outputs

    def _check_finite(
        self, loss: torch.Tensor, terms: dict[str, torch.Tensor], batch: DistillationBatch
    ) -> None:
        """Stop at the first non-finite loss, naming the term and the likely cause rather than a generic hint."""
        if torch.isfinite(loss.detach()).item():
            return
        values = ", ".join(f"{name}={value.detach().item():.6g}" for name, value in terms.items())
        raise FloatingPointError(
            f"non-finite distillation loss at step {self.state.global_step}: loss={loss.item()} ({values}). "
            + diagnose_non_finite(batch)
        )

    # ----- logging -------------------------------------------------------------------------------
    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """Adds each loss term's mean per optimizer step since the last training log, averaged over processes."""
        steps = self.state.global_step - self._terms_logged_at_step
        if "loss" in logs and self._term_totals and steps > 0:
            names = sorted(self._term_totals)
            means = torch.stack([self._term_totals[name] for name in names]) / steps
            if self.accelerator.num_processes > 1:
                means = self.accelerator.reduce(means, reduction="mean")
            for name, value in zip(names, means.tolist(), strict=True):
                logs[f"loss_{name}"] = round(value, 4) if math.isfinite(value) else value
            self._term_totals.clear()
            self._terms_logged_at_step = self.state.global_step
        super().log(logs, *args, **kwargs)

    # ----- saving --------------------------------------------------------------------------------
    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Write the plain student (+ tokenizer and training arguments), on the saving process only.

        The result loads with ``AutoModelFor...from_pretrained``. Checkpoints also hold the width
        projections (under `PROJECTION_PREFIX`, in the same weights file) so that resuming is exact;
        the Trainer's own resume and best-model loading read them back through the wrapper's
        `load_state_dict`.
        """
        output_dir = str(output_dir if output_dir is not None else self.args.output_dir)
        if self.args.should_save:
            os.makedirs(output_dir, exist_ok=True)
            wrapper = self.accelerator.unwrap_model(self.model)
            is_checkpoint = _internal_call and Path(output_dir).name.startswith(f"{PREFIX_CHECKPOINT_DIR}-")
            serialization = {}
            if hasattr(self.args, "save_safetensors"):  # transformers 5 always writes safetensors
                serialization["safe_serialization"] = self.args.save_safetensors
            if is_checkpoint and len(wrapper.projections):
                serialization["state_dict"] = wrapper.state_dict()
            wrapper.student.save_pretrained(output_dir, **serialization)
            if self.processing_class is not None:
                self.processing_class.save_pretrained(output_dir)
            torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save")


def diagnose_non_finite(batch: DistillationBatch) -> str:
    """The first cause found among the inputs of the loss, as advice a user can act on."""
    counted = batch.token_mask if batch.token_level and batch.token_mask is not None else None

    def finite(tensor: torch.Tensor | None) -> bool:
        if tensor is None:
            return True
        values = tensor[counted.bool()] if counted is not None and tensor.dim() == 3 else tensor
        return bool(torch.isfinite(values.float()).all())

    if not finite(batch.student_logits):
        return (
            "The student's logits are not finite: its weights diverged or hold NaN/inf (check the student "
            "checkpoint; lower the learning rate; fp16 overflow: train in bf16 or fp32)."
        )
    if not finite(batch.teacher_logits):
        return (
            "The teacher's logits are not finite at counted positions: check the teacher checkpoint, or run it in "
            "fp32 (fp16 overflow)."
        )
    if batch.is_regression and batch.labels is not None and not finite(batch.labels):
        return "A regression label is not finite: check the data file for NaN/inf scores."
    return "The logits are finite, so a loss term overflowed: check temperature and the loss weights."
