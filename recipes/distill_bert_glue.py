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

import sys

from hfkdq.arguments import ModelArguments
from hfkdq.commands.distill import recipe_main, run_recipe
from hfkdq.config import DistillationArguments
from hfkdq.tasks.glue import GlueDataArguments, build_glue_task

__all__ = ["DistillationArguments", "GlueDataArguments", "ModelArguments", "main"]


def main(argv: list[str] | None = None) -> dict:
    return run_recipe(GlueDataArguments, build_glue_task, argv)


if __name__ == "__main__":
    sys.exit(recipe_main(GlueDataArguments, build_glue_task))
