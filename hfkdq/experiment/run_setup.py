"""Everything a run checks and builds before the teacher is touched, so that a bad run fails in seconds.

`prepare_run` returns the `RunSetup` every later stage reads: the resolved teacher, the student's data
and tokenizer, the training and transfer sets, the checkpoint to resume and the Hub destination.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from transformers import AutoConfig, set_seed

from hfkdq.arguments import ModelArguments
from hfkdq.augment import augmented_training_set
from hfkdq.checkpoints import check_checkpoint_fits, resolve_resume_checkpoint
from hfkdq.compatibility import check_cross_tokenizer_terms
from hfkdq.config import DistillationArguments
from hfkdq.layout import TEACHER_DIR
from hfkdq.loss_terms import active_terms
from hfkdq.resources import resolve_model_name_or_path
from hfkdq.student_init import DEFAULT_STUDENT_NUM_LAYERS, choose_init_layers
from hfkdq.student_tokenizer import (
    StudentData,
    check_student_vocabulary,
    load_student_tokenizer,
    paired_training_set,
)
from hfkdq.students import check_student_depth
from hfkdq.tasks import TaskData
from hfkdq.teacher import TeacherSource
from hfkdq.transfer import check_transfer_ratio, raw_transfer_examples, transfer_examples

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class RunSetup:
    """What `prepare_run` checked and built before the teacher is touched: every later stage reads it."""

    model_args: ModelArguments
    training_args: DistillationArguments
    """With ``push_to_hub`` off: the run publishes itself at the end (`publish_stage`)."""
    output_dir: Path
    teacher: TeacherSource
    student: StudentData
    labelled_dataset: Any
    """The gold training examples, in the student's tokens."""
    train_dataset: Any
    """What the student trains on before transfer data is mixed in (labelled, augmented or paired)."""
    transfer: Any
    resume_checkpoint: str | None
    hub_model_id: str | None


def prepare_run(
    model_args: ModelArguments,
    training_args: DistillationArguments,
    task: TaskData,
    tokenizer,
    student_data: StudentData | None,
    teacher_source: TeacherSource | None,
) -> RunSetup:
    """Every check that can fail without training, so a bad run fails in seconds: the Hub destination,
    the quantization methods and split, the student's shape and vocabulary, augmentation, transfer data."""
    output_dir = Path(training_args.output_dir)
    hub_model_id = None
    if training_args.push_to_hub:
        from hfkdq.hub import check_can_push, check_repo_id

        # Checked now, not after hours of training: a bad repo id, offline mode or a missing token.
        hub_model_id = check_repo_id(training_args.hub_model_id or output_dir.absolute().name)
        check_can_push(getattr(training_args, "hub_token", None))
        training_args = dataclasses.replace(training_args, push_to_hub=False)
    if model_args.quantize:
        from hfkdq.quantization.registry import parse_methods

        parse_methods(
            model_args.quantize
        )  # as at parsing, for model_args changed since: fail before training
        quantization_split(model_args, task)
    resume_checkpoint = resolve_resume_checkpoint(training_args.resume_from_checkpoint, output_dir)
    check_checkpoint_fits(resume_checkpoint, {"num_hidden_layers": student_depth(model_args)})
    model_args = with_resumed_teacher(model_args, training_args, output_dir)
    if teacher_source is None or teacher_source.name != model_args.teacher_name_or_path:
        teacher_source = TeacherSource.resolve(model_args.teacher_name_or_path)
    student = student_data or StudentData(task, tokenizer)
    if not model_args.student_name_or_path:
        # A student the teacher cannot give its layers to fails now, not after the teacher's fine-tuning.
        choose_init_layers(
            model_args.student_layers, student_depth(model_args), teacher_source.config.num_hidden_layers
        )
    else:
        student_source = resolve_model_name_or_path(model_args.student_name_or_path)
        student_config = AutoConfig.from_pretrained(student_source)
        check_student_depth(
            model_args.student_num_layers,
            model_args.student_layers,
            student_config.num_hidden_layers,
            student_source,
        )
        if student_data is None and load_student_tokenizer(student_source, tokenizer) is not None:
            # Caught now, not after the teacher's fine-tuning (Python callers; the recipes pass it).
            raise ValueError(
                f"student {student_source} has its own tokenizer, and run_experiment got no student_data: pass "
                "student_data=StudentData(build_task(data_args, its tokenizer), its tokenizer, own_tokenizer=True)"
            )
        check_student_vocabulary(student_config, student.tokenizer, student_source)
    if model_args.prune_ffn_keep is not None:
        # A keep share that leaves no neuron, or a student without a BERT-style FFN, fails before training.
        check_prunable_config(model_args)
    train_dataset = task.train_dataset
    if student.own_tokenizer:
        check_cross_tokenizer_terms(training_args, True, task.head == "token", task.head == "token")
        if model_args.augment:
            raise ValueError(
                "--augment makes new views with the teacher's tokenizer, and this student reads its own "
                "tokens: drop --augment (or use a student that shares the teacher's tokenizer)"
            )
        # Each model reads its own tokens of the same text; built before the teacher is fine-tuned.
        train_dataset = paired_training_set(task, student.task)
    labelled_dataset = train_dataset
    if model_args.augment:
        # Built (and checked) before the teacher is fine-tuned; the teacher trains on the plain set.
        train_dataset = augmented_training_set(
            task,
            tokenizer,
            model_args.augment,
            model_args.augment_probability,
            model_args.augment_rate,
            training_args.seed,
        )
    check_teacher_cache_settings(model_args, training_args)
    transfer = None
    if model_args.transfer_file or model_args.transfer_train_remainder:
        if model_args.augment:
            raise ValueError(
                "use --augment or transfer data (--transfer_file, --transfer_train_remainder), not both"
            )
        # Read and tokenized before the teacher is fine-tuned: a bad or empty source fails now.
        if student.own_tokenizer:
            transfer = paired_training_set(
                task,
                student.task,
                raw_transfer_examples(task, model_args.transfer_file, model_args.transfer_train_remainder),
            )
        else:
            transfer = transfer_examples(task, model_args.transfer_file, model_args.transfer_train_remainder)
        check_transfer_ratio(model_args.transfer_ratio)
        model_args = with_transfer_cache(model_args, training_args)
    set_seed(training_args.seed)
    return RunSetup(
        model_args,
        training_args,
        output_dir,
        teacher_source,
        student,
        labelled_dataset,
        train_dataset,
        transfer,
        resume_checkpoint,
        hub_model_id,
    )


def with_resumed_teacher(
    model_args: ModelArguments, training_args: DistillationArguments, output_dir: Path
) -> ModelArguments:
    """A resumed run whose interrupted part had finished fine-tuning its teacher (whether or not the
    student had reached a checkpoint) continues with that teacher rather than fine-tune it again."""
    teacher_dir = output_dir / TEACHER_DIR
    if (
        training_args.resume_from_checkpoint
        and model_args.teacher_name_or_path != str(teacher_dir)
        and (teacher_dir / "config.json").is_file()
    ):
        logger.info("Resuming: using the teacher fine-tuned before the interruption, %s.", teacher_dir)
        return dataclasses.replace(model_args, teacher_name_or_path=str(teacher_dir))
    return model_args


def student_depth(model_args: ModelArguments) -> int | None:
    """Blocks the student keeps: --student_num_layers, else 3 of the teacher's or all of its own."""
    if model_args.student_num_layers is not None or model_args.student_name_or_path:
        return model_args.student_num_layers
    return DEFAULT_STUDENT_NUM_LAYERS


def quantization_split(model_args: ModelArguments, task: TaskData) -> str:
    """The split the quantized variants are compared on; a split the run does not have is refused before
    training, not after it."""
    if not task.eval_splits:
        raise ValueError("--quantize needs an evaluation split to measure what each variant loses")
    split = model_args.quantize_eval_split or task.eval_splits[0]
    if split not in task.eval_splits:
        raise ValueError(
            f"--quantize_eval_split {split!r} is not one of this run's evaluation splits "
            f"({', '.join(task.eval_splits)}): pass one of those, or give its file (e.g. --test_file)"
        )
    return split


CACHE_FIX = (
    "Pass --teacher_cache auto (kept in <output_dir>/teacher-cache), a new or empty directory, or delete it."
)


def check_prunable_config(model_args: ModelArguments) -> None:
    """The student's FFN width (from the teacher's or the student's config) must survive --prune_ffn_keep."""
    from hfkdq.pruning import neurons_to_keep
    from hfkdq.pruning.ffn import intermediate_size_key

    source = model_args.student_name_or_path or model_args.teacher_name_or_path
    config = AutoConfig.from_pretrained(resolve_model_name_or_path(source))
    neurons_to_keep(model_args.prune_ffn_keep, getattr(config, intermediate_size_key(config)))


def check_teacher_cache_settings(model_args: ModelArguments, training_args: DistillationArguments) -> None:
    """The cache holds logits for the fixed training set: refuse it where that is not what trains, and
    refuse a directory that is not a cache before the teacher is fine-tuned."""
    if not model_args.teacher_cache:
        return
    if model_args.teacher_cache != "auto":
        from hfkdq.teacher_cache import cache_problem

        problem = cache_problem(model_args.teacher_cache)
        if problem is not None:
            raise ValueError(
                f"--teacher_cache {model_args.teacher_cache} is not a teacher-output cache: {problem}. {CACHE_FIX}"
            )
    if model_args.augment:
        raise ValueError(
            "--teacher_cache stores the teacher's logits for the fixed training set; --augment changes what "
            "trains every epoch, so it needs the live teacher: drop one of them"
        )
    layer_terms = [term.name for term in active_terms(training_args) if term.uses_layer_map]
    if layer_terms:
        raise ValueError(
            f"--teacher_cache stores logits only, but the {', '.join(layer_terms)} term(s) read the teacher's "
            "hidden states or attentions: set their weights to 0 or drop --teacher_cache"
        )


def with_transfer_cache(model_args: ModelArguments, training_args: DistillationArguments) -> ModelArguments:
    """Transfer data is labelled by the teacher once, into the cache ('auto' unless one is named), so no
    training step on it runs the teacher; only layer-wise terms, which read more than logits, keep the
    live teacher."""
    if model_args.teacher_cache or any(term.uses_layer_map for term in active_terms(training_args)):
        return model_args
    return dataclasses.replace(model_args, teacher_cache="auto")
