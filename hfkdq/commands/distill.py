"""`hfkdq distill` and the recipes' entry points: parse ``[config.yaml] [--flags]``, build the task, run.

Recipes differ only in their data arguments and task builder, so recipes/distill_bert_ner.py,
recipes/distill_bert_glue.py and `hfkdq distill ner|glue` all run `run_recipe`; `recipe_main` is a
recipe script's `__main__` (one line and exit status 1 on a bad input).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from hfkdq.commands.errors import EXIT_OK, exit_status, split_verbose

logger = logging.getLogger(__name__)

HELP = "Fine-tune or load a teacher, distill a student, evaluate both (the NER or GLUE recipe)."

EPILOG = """\
Examples:
  # the default experiment: MiniLM teacher fine-tuned on the embedded BTC, 3-layer student
  hfkdq distill ner recipes/configs/ner_btc_minilm.yaml --output_dir outputs/ner-btc-minilm

  # your own CoNLL files, a teacher fine-tuned earlier, and quantized variants at the end
  hfkdq distill ner recipes/configs/ner_btc_minilm.yaml --train_file train.conll \\
      --validation_file dev.conll --teacher_name_or_path outputs/teacher --quantize onnx-int8,torch-int8

  # GLUE SST-2 from its TSV files
  hfkdq distill glue recipes/configs/glue_sst2_minilm.yaml --output_dir outputs/glue-sst2

Every flag of recipes/distill_bert_<task>.py works here: `hfkdq distill ner --help` lists them.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=("ner", "glue"), help="Which recipe: NER (CoNLL) or GLUE.")
    parser.add_argument(
        "recipe_args",
        nargs=argparse.REMAINDER,
        help="[config.yaml] [--flag value ...]: exactly the flags of recipes/distill_bert_<task>.py.",
    )


def run(args: argparse.Namespace) -> int:
    """The recipes as a subcommand, so an installed package distills without a checkout of recipes/."""
    if args.task == "ner":
        from hfkdq.tasks.ner import NerDataArguments as data_arguments
        from hfkdq.tasks.ner import build_ner_task as build_task
    else:
        from hfkdq.tasks.glue import GlueDataArguments as data_arguments
        from hfkdq.tasks.glue import build_glue_task as build_task
    run_recipe(data_arguments, build_task, list(args.recipe_args))
    return EXIT_OK


def recipe_main(data_arguments_type: type, build_task, argv: list[str] | None = None) -> int:
    """A recipe script's entry point: one clear line and exit status 1 on a bad input; the
    traceback only with ``--verbose``."""
    argv, verbose = split_verbose(list(sys.argv[1:] if argv is None else argv), ("--verbose",))

    def run_it() -> int:
        run_recipe(data_arguments_type, build_task, argv)
        return EXIT_OK

    return exit_status(Path(sys.argv[0]).name, run_it, verbose)


def run_recipe(data_arguments_type: type, build_task, argv: list[str] | None = None) -> dict[str, Any]:
    """A recipe's whole `main`: parse ``[config.yaml] [--flags]``, set up logging, build the task, run.

    Recipes differ only in their data arguments and task builder, so both share this entry point.
    """
    import transformers
    from transformers import AutoConfig

    from hfkdq.config import DistillationArguments
    from hfkdq.model_checks import check_model_source
    from hfkdq.pipeline import ModelArguments, run_experiment
    from hfkdq.recipe_args import parse_recipe_args
    from hfkdq.resources import resolve_model_name_or_path
    from hfkdq.run_dir import check_not_finished
    from hfkdq.student_tokenizer import StudentData, load_student_tokenizer
    from hfkdq.teacher import TeacherSource
    from hfkdq.validation import check_sequence_length

    model_args, data_args, training_args = parse_recipe_args(
        (ModelArguments, data_arguments_type, DistillationArguments), argv
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    logging.getLogger("hfkdq").setLevel(training_args.get_process_log_level())
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    check_not_finished(  # before any model is loaded or data read
        training_args.output_dir,
        training_args.overwrite_output_dir,
        bool(training_args.resume_from_checkpoint),
        restore=training_args.process_index == 0,
    )
    # Resolved, checked file by file and its config read once; every stage after this gets the object.
    teacher = TeacherSource.resolve(model_args.teacher_name_or_path)
    check_sequence_length(data_args.max_seq_length, teacher.config, teacher.path)
    tokenizer = teacher.tokenizer()
    student_tokenizer = None
    if model_args.student_name_or_path:
        # The student brings its own tokenizer (its embeddings are indexed by it): checked before any work.
        student_source = resolve_model_name_or_path(model_args.student_name_or_path)
        check_model_source(student_source, "student")
        check_sequence_length(
            data_args.max_seq_length, AutoConfig.from_pretrained(student_source), student_source
        )
        student_tokenizer = load_student_tokenizer(student_source, tokenizer)
    task = build_task(data_args, tokenizer)
    student_data = None
    if student_tokenizer is not None:
        logger.info("The student reads its own tokens; teacher and student are compared word by word.")
        student_data = StudentData(
            build_task(data_args, student_tokenizer), student_tokenizer, own_tokenizer=True
        )
    return run_experiment(model_args, training_args, task, tokenizer, data_args, student_data, teacher)
