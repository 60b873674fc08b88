#!/usr/bin/env python
"""Seconds per optimizer step: plain fine-tuning vs distillation with the live teacher vs from the cache.

(And with the live teacher run as a bf16 copy, `--teacher_bf16`.)

Same student (3 of the MiniLM-L6 teacher's layers), same batches (BTC, batch 32, the same seed), the
modes interleaved round by round so that machine noise hits all of them alike; the first
steps of each round are warm-up and not counted. Ratios are quoted against plain fine-tuning:

    python benchmarks/step_cost.py --rounds 5 --steps 12 --results benchmarks/results/step_cost_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, TrainerCallback, set_seed

from hfkdq.config import DistillationArguments
from hfkdq.environment import capture_environment
from hfkdq.resources import packaged_minilm_path, resolve_model_name_or_path
from hfkdq.students import make_student
from hfkdq.tasks.ner import NerDataArguments, build_ner_task
from hfkdq.teacher_cache import build_teacher_cache
from hfkdq.trainer import DistillationTrainer

MODES = {
    "plain": dict(kd_weight=0.0),
    "kd_live": dict(kd_weight=1.0),
    "kd_cached": dict(kd_weight=1.0),
    # The live teacher as a bf16 copy (--teacher_bf16): what a CPU with AVX512-BF16 saves per pass.
    "kd_live_bf16": dict(kd_weight=1.0, teacher_bf16=True),
}


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step (forward, backward, optimizer), synchronised on CUDA."""

    def __init__(self):
        self.seconds: list[float] = []
        self._started = 0.0

    def _now(self) -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = self._now()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(self._now() - self._started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--steps", type=int, default=12, help="Steps per mode per round (the first 2 are warm-up)."
    )
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument(
        "--train_samples", type=int, default=1024, help="First N BTC tweets (the cache covers them)."
    )
    parser.add_argument("--results", default="benchmarks/results/step_cost_cpu.json")
    parser.add_argument(
        "--teacher", default=None, help="Teacher base (Hub id or path; default: the packaged MiniLM-L6)."
    )
    options = parser.parse_args()
    if options.steps < 3:
        parser.error("--steps must be >= 3 (2 warm-up steps are not counted)")

    teacher_path = (
        resolve_model_name_or_path(options.teacher) if options.teacher else str(packaged_minilm_path())
    )
    tokenizer = AutoTokenizer.from_pretrained(teacher_path)
    task = build_ner_task(
        NerDataArguments(max_seq_length=128, max_train_samples=options.train_samples), tokenizer
    )
    set_seed(0)
    teacher = AutoModelForTokenClassification.from_pretrained(
        teacher_path, num_labels=len(task.label_names), **task.label_maps()
    )
    work = Path(tempfile.mkdtemp(prefix="hfkdq-step-cost-"))
    cache = build_teacher_cache(teacher, task.train_dataset, task.data_collator, work / "cache")
    per_round: dict[str, list[float]] = {mode: [] for mode in MODES}
    for round_index in range(options.rounds):
        for mode, weights in MODES.items():
            set_seed(round_index)
            student = make_student(teacher, 3, "alternate")
            timer = StepTimer()
            args = DistillationArguments(
                output_dir=str(work / mode),
                max_steps=options.steps,
                per_device_train_batch_size=options.batch_size,
                learning_rate=1e-4,
                save_strategy="no",
                report_to=[],
                disable_tqdm=True,
                logging_steps=10_000,
                seed=round_index,
                use_cpu=not torch.cuda.is_available(),
                **weights,
            )
            trainer = DistillationTrainer(
                model=student,
                teacher_model=teacher,
                args=args,
                train_dataset=task.train_dataset,
                processing_class=tokenizer,
                data_collator=task.data_collator,
                teacher_cache=cache.path if mode == "kd_cached" else None,
                callbacks=[timer],
            )
            trainer.train()
            per_round[mode].append(statistics.median(timer.seconds[2:]))
            print(f"round {round_index} {mode}: {per_round[mode][-1]:.4f} s/step", flush=True)

    def summary(values):
        return {"median_s": round(statistics.median(values), 4), "per_round_s": [round(v, 4) for v in values]}

    ratios = {
        f"{mode}_vs_plain": [
            round(a / b, 3) for a, b in zip(per_round[mode], per_round["plain"], strict=True)
        ]
        for mode in MODES
        if mode != "plain"
    }
    payload = {
        "description": __doc__.split("\n\n")[0],
        "setup": {
            "teacher": f"{options.teacher or 'MiniLM-L6 (packaged)'}, token-classification head",
            "student": "3 layers copied from it (alternate)",
            "data": f"first {options.train_samples} BTC training tweets (embedded), max_seq_length 128",
            "batch_size": options.batch_size,
            "rounds": options.rounds,
            "counted_steps_per_round": options.steps - 2,
        },
        "environment": capture_environment(),
        "seconds_per_step": {mode: summary(values) for mode, values in per_round.items()},
        "ratio_vs_plain": {
            name: {
                "mean": round(statistics.mean(values), 3),
                "sd": round(statistics.stdev(values), 3) if len(values) > 1 else 0.0,
                "per_round": values,
            }
            for name, values in ratios.items()
        },
    }
    Path(options.results).parent.mkdir(parents=True, exist_ok=True)
    Path(options.results).write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload["ratio_vs_plain"], indent=2))


if __name__ == "__main__":
    main()
