#!/usr/bin/env python
"""Distill a BERT-style NER teacher into a smaller student, then evaluate and save both.

    python recipes/distill_bert_ner.py recipes/configs/ner_btc_minilm.yaml [--flag value ...]
    accelerate launch recipes/distill_bert_ner.py recipes/configs/ner_btc_minilm.yaml

Every `TrainingArguments` flag works; YAML keys are the same flags, and flags override the file.
"""

from __future__ import annotations

import sys

from hfkdq.arguments import ModelArguments
from hfkdq.commands.distill import recipe_main, run_recipe
from hfkdq.config import DistillationArguments
from hfkdq.tasks.ner import NerDataArguments, build_ner_task

__all__ = ["DistillationArguments", "NerDataArguments", "ModelArguments", "main"]


def main(argv: list[str] | None = None) -> dict:
    return run_recipe(NerDataArguments, build_ner_task, argv)


if __name__ == "__main__":
    sys.exit(recipe_main(NerDataArguments, build_ner_task))
