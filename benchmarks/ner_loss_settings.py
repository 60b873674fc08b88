#!/usr/bin/env python
"""Which distillation loss settings help a 3-of-6-layer MiniLM student on NER? Measured, not assumed.

Fine-tunes (or loads) one teacher, then trains the same copied student under each loss setting with
the same steps and seeds, and records validation/test entity F1 per setting and seed:

    python benchmarks/ner_loss_settings.py --output_dir outputs/loss-settings --seeds 1 2 3

The recipe's default loss weights are chosen from these results (benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from hfkdq.arguments import ModelArguments
from hfkdq.config import DistillationArguments
from hfkdq.pipeline import load_tokenizer, run_experiment
from hfkdq.recipe_args import yaml_to_flags
from hfkdq.tasks.ner import NerDataArguments, build_ner_task
from hfkdq.teacher import prepare_teacher

SETTINGS = {
    "plain_finetune": dict(ce_weight=1.0, kd_weight=0.0, hidden_weight=0.0, attention_weight=0.0),
    "logit_kd_T2": dict(ce_weight=1.0, kd_weight=1.0, temperature=2.0),
    "logit_kd_T4": dict(ce_weight=1.0, kd_weight=1.0, temperature=4.0),
    "kd_hidden_mse": dict(ce_weight=1.0, kd_weight=1.0, temperature=2.0, hidden_weight=1.0),
    "kd_hidden_attention": dict(
        ce_weight=1.0, kd_weight=1.0, temperature=2.0, hidden_weight=1.0, attention_weight=1.0
    ),
    "kd_attention": dict(ce_weight=1.0, kd_weight=1.0, temperature=2.0, attention_weight=1.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="recipes/configs/ner_btc_minilm.yaml")
    parser.add_argument("--output_dir", default="outputs/ner-loss-settings")
    parser.add_argument(
        "--teacher", default=None, help="Fine-tuned teacher; default: fine-tune the config's."
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--results", default="benchmarks/results/ner_loss_settings.json")
    options, extra = parser.parse_known_args()
    options.extra = extra  # any other flag is a recipe flag overriding the config

    from transformers import HfArgumentParser

    flags = yaml_to_flags(options.config) + list(options.extra) + ["--output_dir", options.output_dir]
    model_args, data_args, base_args = HfArgumentParser(
        (ModelArguments, NerDataArguments, DistillationArguments)
    ).parse_args_into_dataclasses(args=flags)
    tokenizer = load_tokenizer(model_args)
    task = build_ner_task(data_args, tokenizer)

    started = time.perf_counter()
    if options.teacher is None:
        teacher_dir = prepare_teacher(model_args, base_args, task, tokenizer).source
    else:
        teacher_dir = options.teacher
    teacher_seconds = time.perf_counter() - started
    model_args = replace(model_args, teacher_name_or_path=teacher_dir)

    runs = []
    for name in options.settings:
        for seed in options.seeds:
            args = replace(
                base_args, output_dir=f"{options.output_dir}/{name}-seed{seed}", seed=seed, **SETTINGS[name]
            )
            run_started = time.perf_counter()
            results = run_experiment(model_args, args, task, tokenizer)
            runs.append(
                {
                    "setting": name,
                    "seed": seed,
                    "weights": SETTINGS[name],
                    "teacher_f1": {s: m["f1"] for s, m in results["teacher"]["metrics"].items()},
                    "student_f1": {s: m["f1"] for s, m in results["student"]["metrics"].items()},
                    "seconds": round(time.perf_counter() - run_started, 1),
                }
            )
            print(json.dumps(runs[-1]), flush=True)
            _write(options, teacher_dir, teacher_seconds, runs)
    _write(options, teacher_dir, teacher_seconds, runs)


def _write(options, teacher_dir: str, teacher_seconds: float, runs: list[dict]) -> None:
    """Rewritten after every run, so a cut-off sweep still leaves its finished runs on disk."""

    summary = {}
    for name in dict.fromkeys(run["setting"] for run in runs):
        mine = [run for run in runs if run["setting"] == name]
        summary[name] = {
            split: {
                "mean_f1": round(statistics.mean(run["student_f1"][split] for run in mine), 4),
                "stdev_f1": round(statistics.stdev(run["student_f1"][split] for run in mine), 4)
                if len(mine) > 1
                else 0.0,
            }
            for split in mine[0]["student_f1"]
        }
    payload = {
        "description": "3-layer student copied from the teacher (layers 1,3,5), same steps and seeds per setting",
        "config": options.config,
        "overrides": options.extra,
        "teacher": teacher_dir,
        "teacher_finetune_seconds": round(teacher_seconds, 1),
        "seeds": options.seeds,
        "summary": summary,
        "runs": runs,
    }
    Path(options.results).parent.mkdir(parents=True, exist_ok=True)
    Path(options.results).write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
