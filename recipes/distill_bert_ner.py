#!/usr/bin/env python
"""Distill a BERT-style NER teacher into a smaller student, then evaluate and save both.

    python recipes/distill_bert_ner.py recipes/configs/ner_btc_minilm.yaml [--flag value ...]
    accelerate launch recipes/distill_bert_ner.py recipes/configs/ner_btc_minilm.yaml

Every `TrainingArguments` flag works; YAML keys are the same flags, and flags override the file.
"""

from __future__ import annotations

import logging
import sys

import transformers

from hfkdq.config import DistillationArguments
from hfkdq.pipeline import ModelArguments, load_tokenizer, run_experiment
from hfkdq.recipe_args import parse_recipe_args
from hfkdq.tasks.ner import NerDataArguments, build_ner_task


def main(argv: list[str] | None = None) -> dict:
    model_args, data_args, training_args = parse_recipe_args(
        (ModelArguments, NerDataArguments, DistillationArguments), argv
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    logging.getLogger("hfkdq").setLevel(training_args.get_process_log_level())
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    tokenizer = load_tokenizer(model_args)
    task = build_ner_task(data_args, tokenizer)
    return run_experiment(model_args, training_args, task, tokenizer)


if __name__ == "__main__":
    main()
