#!/usr/bin/env python
"""Distill a BERT-style GLUE teacher into a smaller student, then evaluate and save both.

    python recipes/distill_bert_glue.py recipes/configs/glue_sst2_minilm.yaml [--flag value ...]
    accelerate launch recipes/distill_bert_glue.py recipes/configs/glue_rte_minilm.yaml
    python recipes/distill_bert_glue.py --task_name stsb --dataset_name nyu-mll/glue --output_dir out  # online

Every `TrainingArguments` flag works; YAML keys are the same flags, and flags override the file.
Data: `--train_file/--validation_file/--test_file` (.tsv in the original GLUE layout, .csv, .jsonl),
or `--dataset_name` (default without files: the Hub's `nyu-mll/glue`, which needs network access).
"""

from __future__ import annotations

import logging
import sys

import transformers

from hfkdq.config import DistillationArguments
from hfkdq.pipeline import ModelArguments, load_tokenizer, run_experiment
from hfkdq.recipe_args import parse_recipe_args
from hfkdq.tasks.glue import GlueDataArguments, build_glue_task


def main(argv: list[str] | None = None) -> dict:
    model_args, data_args, training_args = parse_recipe_args(
        (ModelArguments, GlueDataArguments, DistillationArguments), argv
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    logging.getLogger("hfkdq").setLevel(training_args.get_process_log_level())
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    tokenizer = load_tokenizer(model_args)
    task = build_glue_task(data_args, tokenizer)
    return run_experiment(model_args, training_args, task, tokenizer)


if __name__ == "__main__":
    main()
