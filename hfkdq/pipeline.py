"""The experiment flow both recipes share: teacher -> student -> distill -> evaluate -> save.

A recipe only builds its `TaskData` (NER or GLUE); everything after that is the same code, so the
two recipes cannot drift apart in how they fine-tune, distill, evaluate or save.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, set_seed

from hfkdq.arguments import ModelArguments
from hfkdq.checkpoints import check_checkpoint_fits
from hfkdq.config import DistillationArguments
from hfkdq.experiment.delivery import publish_stage, quantize_stage
from hfkdq.experiment.results import assemble_results, write_results
from hfkdq.experiment.run_setup import prepare_run
from hfkdq.experiment.training import build_student, distil_stage, evaluate_stage, teacher_stage
from hfkdq.outputs import remove_stale_staging
from hfkdq.resources import resolve_model_name_or_path
from hfkdq.run_dir import check_not_finished, claimed_run, run_lock
from hfkdq.student_tokenizer import StudentData
from hfkdq.tasks import TaskData
from hfkdq.teacher import TeacherSource

logger = logging.getLogger(__name__)


def load_tokenizer(model_args: ModelArguments):
    """The teacher's tokenizer (also the student's, unless a pretrained student brings its own)."""
    return AutoTokenizer.from_pretrained(resolve_model_name_or_path(model_args.teacher_name_or_path))


def run_experiment(
    model_args: ModelArguments,
    training_args: DistillationArguments,
    task: TaskData,
    tokenizer,
    data_args: Any = None,
    student_data: StudentData | None = None,
    teacher_source: TeacherSource | None = None,
) -> dict[str, Any]:
    """`run_experiment_unlocked` with one run per output directory: a lock refuses a concurrent run, a
    finished directory is replaced only with ``--overwrite_output_dir``, and a failed re-run leaves the
    previous run's outputs as they were."""
    output_dir = Path(training_args.output_dir)
    overwrite, resuming = training_args.overwrite_output_dir, bool(training_args.resume_from_checkpoint)
    check_not_finished(output_dir, overwrite, resuming, restore=training_args.process_index == 0)
    arguments = (model_args, training_args, task, tokenizer, data_args, student_data, teacher_source)
    if training_args.process_index != 0:
        return run_experiment_unlocked(*arguments)
    with run_lock(output_dir):
        for stale in remove_stale_staging(output_dir):
            logger.warning("Removed %s, left by an interrupted run.", stale)
        with claimed_run(output_dir, overwrite, resuming):
            return run_experiment_unlocked(*arguments)


def run_experiment_unlocked(
    model_args: ModelArguments,
    training_args: DistillationArguments,
    task: TaskData,
    tokenizer,
    data_args: Any = None,
    student_data: StudentData | None = None,
    teacher_source: TeacherSource | None = None,
) -> dict[str, Any]:
    """Fine-tune or load the teacher, build and distill the student, evaluate both, save everything;
    then quantize and publish when asked. Each stage is a function below, in this order.

    Writes ``<output_dir>/student`` (plain student + tokenizer), ``<output_dir>/teacher`` when the
    teacher was fine-tuned here, and ``<output_dir>/results.json``; each is written to a temporary
    name first so a failed run leaves no half-written model behind. With ``--push_to_hub`` the run is
    published through `hfkdq.hub` at the very end (after quantization, gated by ``--max_metric_drop``);
    the Trainers never push: they would publish checkpoints and the bare student without its card.
    `data_args` (the recipe's data arguments) are recorded in results.json for the model card.
    `student_data` is the student's own task data and tokenizer when it does not read the teacher's
    tokens (`hfkdq.student_tokenizer`); it then trains on a paired set and is evaluated on its own.
    `teacher_source` is the resolved `--teacher_name_or_path` when the caller has it already.
    """
    started = time.perf_counter()
    run = prepare_run(model_args, training_args, task, tokenizer, student_data, teacher_source)
    teacher = teacher_stage(run, task, tokenizer)
    set_seed(run.training_args.seed)
    student_model = build_student(run.model_args, teacher.model)
    check_checkpoint_fits(run.resume_checkpoint, student_model.config.to_dict())
    distilled = distil_stage(run, task, tokenizer, teacher, student_model)
    evaluations = evaluate_stage(run, teacher, distilled)
    results = assemble_results(run, task, data_args, teacher, distilled, evaluations, started)
    if distilled.trainer.is_world_process_zero():
        write_results(run.output_dir, results, task.main_metric)
        metric_drop = quantize_stage(run, results, teacher, distilled)
        publish_stage(run, results)
        if metric_drop is not None:
            raise metric_drop
    distilled.trainer.accelerator.wait_for_everyone()
    return results
