#!/usr/bin/env python
"""The study that chooses the distillation defaults: four data sets, several settings, three seeds.

For each data set (BTC, CoNLL-2003, SST-2, RTE from ../shared/data) one MiniLM-L6 teacher is
fine-tuned (best epoch on validation, early stopping) and its logits cached once; then students are
trained under each setting with the same steps and seeds:

    plain / kd (logit KD, T=2)            x  initialisation alternate | top-aligned | bottom   (3 layers)
    kd + hidden-state MSE                 (alternate, 3 layers, live teacher)
    plain / kd                            (alternate, 2 layers)

Every run is written to ``<output_dir>/runs/<data set>/<run>.json`` as it finishes, so a killed study
continues where it stopped; ``results.json`` (with the ``summary`` of the chosen defaults) is
rewritten after every run. The metric is test entity F1 for NER and validation accuracy for GLUE, in
points (0-100). Defaults are chosen by the mean over all four data sets, never one:

    python benchmarks/kd_study.py --output_dir outputs/kd-study --results_dir benchmarks/results/kd_study
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch
from transformers import AutoTokenizer, Trainer, TrainingArguments, set_seed

from hfkdq.config import DistillationArguments
from hfkdq.pipeline import ModelArguments
from hfkdq.resources import resolve_model_name_or_path
from hfkdq.students import make_student
from hfkdq.teacher import prepare_teacher
from hfkdq.teacher_cache import TeacherOutputCache, build_teacher_cache
from hfkdq.trainer import DistillationTrainer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TEACHER = "sentence-transformers/all-MiniLM-L6-v2"

PLAIN = dict(ce_weight=1.0, kd_weight=0.0, hidden_weight=0.0, attention_weight=0.0)
KD = dict(ce_weight=1.0, kd_weight=1.0, temperature=2.0, hidden_weight=0.0, attention_weight=0.0)
KD_HIDDEN = dict(KD, hidden_weight=1.0)


@dataclass(frozen=True)
class Run:
    setting: str
    weights: dict
    init: str
    layers: int

    @property
    def name(self) -> str:
        return f"{self.setting}-{self.init}-L{self.layers}"


# In priority order: a study cut short still has the comparisons that decide the defaults.
RUNS = [
    Run("plain", PLAIN, "alternate", 3),
    Run("kd", KD, "alternate", 3),
    Run("plain", PLAIN, "top-aligned", 3),
    Run("kd", KD, "top-aligned", 3),
    Run("plain", PLAIN, "alternate", 2),
    Run("kd", KD, "alternate", 2),
    Run("plain", PLAIN, "bottom", 3),
    Run("kd", KD, "bottom", 3),
    Run("kd_hidden", KD_HIDDEN, "alternate", 3),
]


@dataclass
class DataSet:
    name: str
    kind: str  # "ner" or "glue"
    files: dict
    report_split: str
    max_train_samples: int | None
    max_eval_samples: int | None = None
    task_name: str | None = None
    learning_rate: float = 2e-4
    teacher_learning_rate: float = 3e-4
    epochs: float = 5
    teacher_epochs: float = 10
    batch_size: int = 32
    max_seq_length: int = 128
    extra: dict = field(default_factory=dict)


def data_sets(train_samples: int, eval_samples: int | None) -> dict[str, DataSet]:
    return {
        "btc": DataSet(
            "btc",
            "ner",
            {
                split: str(SHARED / "btc" / f"{stem}.conll")
                for split, stem in (("train", "train"), ("validation", "dev"), ("test", "test"))
            },
            "test",
            train_samples,
            max_eval_samples=eval_samples,
        ),
        "conll2003": DataSet(
            "conll2003",
            "ner",
            {split: str(SHARED / "conll2003" / f"{split}.txt") for split in ("train", "validation", "test")},
            "test",
            train_samples,
            max_eval_samples=eval_samples,
        ),
        "sst2": DataSet(
            "sst2",
            "glue",
            {split: str(SHARED / "glue" / "sst2" / f"{split}.tsv") for split in ("train", "validation")},
            "validation",
            train_samples,
            task_name="sst2",
            learning_rate=1e-4,
            teacher_learning_rate=1e-4,
        ),
        "rte": DataSet(
            "rte",
            "glue",
            {split: str(SHARED / "glue" / "rte" / f"{split}.tsv") for split in ("train", "validation")},
            "validation",
            min(train_samples, 600),  # pairs are long: the costliest data set per example
            task_name="rte",
            learning_rate=1e-4,
            teacher_learning_rate=1e-4,
            epochs=4,
            batch_size=16,
        ),
    }


def build_task(data_set: DataSet, tokenizer):
    if data_set.kind == "ner":
        from hfkdq.tasks.ner import NerDataArguments, build_ner_task

        arguments = NerDataArguments(
            train_file=data_set.files["train"],
            validation_file=data_set.files["validation"],
            test_file=data_set.files.get("test"),
            max_seq_length=data_set.max_seq_length,
            max_train_samples=data_set.max_train_samples,
            max_eval_samples=data_set.max_eval_samples,
        )
        return build_ner_task(arguments, tokenizer)
    from hfkdq.tasks.glue import GlueDataArguments, build_glue_task

    arguments = GlueDataArguments(
        task_name=data_set.task_name,
        train_file=data_set.files["train"],
        validation_file=data_set.files["validation"],
        max_seq_length=data_set.max_seq_length,
        max_train_samples=data_set.max_train_samples,
        max_eval_samples=data_set.max_eval_samples,
    )
    return build_glue_task(arguments, tokenizer)


def training_arguments(data_set: DataSet, output_dir: Path, seed: int, num_examples: int, **weights):
    steps = math.ceil(num_examples / data_set.batch_size) * data_set.epochs
    return DistillationArguments(
        output_dir=str(output_dir),
        num_train_epochs=data_set.epochs,
        learning_rate=data_set.learning_rate,
        per_device_train_batch_size=data_set.batch_size,
        per_device_eval_batch_size=128,
        warmup_steps=int(0.1 * steps),
        weight_decay=0.01,
        seed=seed,
        save_strategy="no",
        eval_strategy="no",
        logging_steps=10_000,
        report_to=[],
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        **weights,
    )


def score(model, task, split: str, data_set: DataSet) -> float:
    evaluator = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir="/tmp/hfkdq-kd-study-eval",
            per_device_eval_batch_size=128,
            report_to=[],
            disable_tqdm=True,
            use_cpu=not torch.cuda.is_available(),
        ),
        data_collator=task.data_collator,
        compute_metrics=task.compute_metrics,
    )
    metrics = evaluator.evaluate(task.features[split], metric_key_prefix=split)
    return round(100 * metrics[f"{split}_{task.main_metric}"], 2)


def prepare(data_set: DataSet, tokenizer, work: Path):
    """The data set's task, its teacher (fine-tuned once, reused on resume), teacher scores and logit cache."""
    task = build_task(data_set, tokenizer)
    teacher_dir = work / "teacher"
    model_args = ModelArguments(
        teacher_name_or_path=str(teacher_dir) if (teacher_dir / "config.json").is_file() else TEACHER,
        teacher_num_train_epochs=data_set.teacher_epochs,
        teacher_learning_rate=data_set.teacher_learning_rate,
    )
    started = time.perf_counter()
    set_seed(0)
    args = training_arguments(data_set, work, 0, len(task.train_dataset), **KD)
    teacher = prepare_teacher(model_args, args, task, tokenizer)
    teacher_seconds = time.perf_counter() - started
    info_file = work / "teacher.json"
    if not info_file.is_file():
        info = {
            "score": score(teacher.model, task, data_set.report_split, data_set),
            "validation": score(teacher.model, task, "validation", data_set),
            "learning_curve": teacher.learning_curve,
            "seconds": round(teacher_seconds, 1),
        }
        info_file.write_text(json.dumps(info, indent=2) + "\n")
    cache_dir = work / "teacher-cache"
    if (cache_dir / "hfkdq_teacher_cache.json").is_file():
        cache = TeacherOutputCache.load(cache_dir)
    else:
        cache = build_teacher_cache(teacher.model, task.train_dataset, task.data_collator, cache_dir)
    return task, teacher.model, json.loads(info_file.read_text()), cache


def run_one(data_set: DataSet, task, teacher, cache, tokenizer, run: Run, seed: int, work: Path) -> dict:
    set_seed(seed)
    student = make_student(teacher, run.layers, run.init)
    args = training_arguments(data_set, work / "scratch", seed, len(task.train_dataset), **run.weights)
    only_logits = run.weights.get("hidden_weight", 0) == 0 and run.weights.get("attention_weight", 0) == 0
    started = time.perf_counter()
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=task.train_dataset,
        processing_class=tokenizer,
        data_collator=task.data_collator,
        teacher_cache=cache if only_logits and run.weights["kd_weight"] > 0 else None,
    )
    result = trainer.train()
    seconds = time.perf_counter() - started
    return {
        "data_set": data_set.name,
        "run": run.name,
        "setting": run.setting,
        "init": run.init,
        "layers": run.layers,
        "init_teacher_layers": student.config.distilled_from_layers,
        "seed": seed,
        "weights": run.weights,
        "score": score(trainer.student, task, data_set.report_split, data_set),
        "train_seconds": round(seconds, 1),
        "train_loss": result.training_loss,
    }


def mean_sd(values: list[float]) -> dict:
    return {
        "mean": round(statistics.mean(values), 2),
        "sd": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def summarise(runs: list[dict], teachers: dict, sizes: dict) -> dict:
    table: dict = {}
    for entry in runs:
        table.setdefault(entry["data_set"], {}).setdefault(entry["run"], []).append(entry["score"])
    per_run = {ds: {name: mean_sd(scores) for name, scores in by_run.items()} for ds, by_run in table.items()}
    complete = [ds for ds in per_run if ds in teachers]
    # Defaults by the mean over every data set that has both runs of a candidate, never by one.
    candidates = {}
    for run in RUNS:
        values = [per_run[ds][run.name]["mean"] for ds in complete if run.name in per_run[ds]]
        if len(values) == len(complete) and values:
            candidates[run.name] = round(statistics.mean(values), 2)
    three_layer = {name: value for name, value in candidates.items() if name.endswith("-L3")}
    chosen = max(three_layer, key=three_layer.get) if three_layer else None
    chosen_init = chosen.split("-", 1)[1].rsplit("-L", 1)[0] if chosen else None
    summary = {}
    for ds in complete:
        plain = per_run[ds].get(f"plain-{chosen_init}-L3")
        distilled = per_run[ds].get(f"kd-{chosen_init}-L3")
        summary[ds] = {
            "teacher": teachers[ds]["score"],
            "plain": {k: plain[k] for k in ("mean", "sd")} if plain else None,
            "distilled": {k: distilled[k] for k in ("mean", "sd")} if distilled else None,
            "retention_pct": round(100 * distilled["mean"] / teachers[ds]["score"], 1)
            if distilled and teachers[ds]["score"] > 0
            else None,
            "train_examples": sizes.get(ds),
        }
    return {
        "summary": summary,
        "mean_over_data_sets": candidates,
        "chosen": {"best_3_layer_run": chosen, "init": chosen_init},
        "per_run": per_run,
    }


def environment() -> dict:
    versions = {}
    for package in ("torch", "transformers", "accelerate", "datasets"):
        versions[package] = metadata.version(package)
    return {
        "versions": versions,
        "device": torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"cpu ({platform.processor() or platform.machine()})",
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default="outputs/kd-study")
    parser.add_argument("--results_dir", default="benchmarks/results/kd_study")
    parser.add_argument("--data_sets", nargs="+", default=["btc", "conll2003", "sst2", "rte"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument(
        "--train_samples", type=int, default=1000, help="First N training examples per data set."
    )
    parser.add_argument(
        "--eval_samples",
        type=int,
        default=600,
        help="First N sentences of each NER evaluation split (GLUE: all).",
    )
    parser.add_argument("--runs", nargs="+", default=[run.name for run in RUNS], help="Subset of run names.")
    options = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_name_or_path(TEACHER))
    output_dir, results_dir = Path(options.output_dir), Path(options.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    selected = [data_sets(options.train_samples, options.eval_samples)[name] for name in options.data_sets]
    prepared, teachers, sizes = {}, {}, {}
    for data_set in selected:
        work = output_dir / data_set.name
        work.mkdir(parents=True, exist_ok=True)
        prepared[data_set.name] = prepare(data_set, tokenizer, work)
        teachers[data_set.name] = prepared[data_set.name][2]
        sizes[data_set.name] = len(prepared[data_set.name][0].train_dataset)
        print(f"{data_set.name}: teacher {teachers[data_set.name]}", flush=True)

    runs_wanted = [run for run in RUNS if run.name in options.runs]
    for run in runs_wanted:
        for seed in options.seeds:
            for data_set in selected:
                record = output_dir / "runs" / data_set.name / f"{run.name}-seed{seed}.json"
                if record.is_file():
                    continue
                task, teacher, _, cache = prepared[data_set.name]
                entry = run_one(
                    data_set, task, teacher, cache, tokenizer, run, seed, output_dir / data_set.name
                )
                record.parent.mkdir(parents=True, exist_ok=True)
                record.write_text(json.dumps(entry, indent=2) + "\n")
                print(json.dumps(entry), flush=True)
                write_results(output_dir, results_dir, teachers, sizes, options)
    write_results(output_dir, results_dir, teachers, sizes, options)


def render_markdown(payload: dict) -> str:
    """REPORT.md: every run's mean +/- sd per data set, and the mean over data sets that chose the defaults."""
    data_sets = list(payload["per_run"])
    lines = [
        "# Which settings? (measured by benchmarks/kd_study.py)",
        "",
        payload["description"],
        f"Subsampling: {payload['subsampling']['note']}. Seeds: {payload['seeds']}. "
        f"Device: {payload['environment']['device']}.",
        "",
        "| run | " + " | ".join(data_sets) + " | mean over data sets |",
        "|---|" + "---:|" * (len(data_sets) + 1),
        "| teacher | "
        + " | ".join(f"{payload['teachers'][ds]['score']:.2f}" for ds in data_sets)
        + " | "
        + f"{statistics.mean(payload['teachers'][ds]['score'] for ds in data_sets):.2f} |",
    ]
    for run in RUNS:
        cells = [payload["per_run"][ds].get(run.name) for ds in data_sets]
        if not any(cells):
            continue
        shown = [f"{c['mean']:.2f} ± {c['sd']:.2f} (n={c['n']})" if c else "–" for c in cells]
        mean = payload["mean_over_data_sets"].get(run.name)
        lines.append(f"| {run.name} | " + " | ".join(shown) + f" | {mean if mean is not None else '–'} |")
    chosen = payload["chosen"]
    lines += [
        "",
        f"Best 3-layer run by the mean over data sets: **{chosen['best_3_layer_run']}** (init {chosen['init']}).",
    ]
    return "\n".join(lines) + "\n"


def write_results(output_dir: Path, results_dir: Path, teachers: dict, sizes: dict, options) -> None:
    runs = [json.loads(path.read_text()) for path in sorted((output_dir / "runs").glob("*/*.json"))]
    payload = {
        "description": (
            "MiniLM-L6 teacher per data set (best epoch on validation), students copied from it and trained "
            "with the same steps and seeds per setting; metric in points: test entity F1 (NER), validation "
            "accuracy (GLUE)."
        ),
        "subsampling": {
            "train_examples": sizes,
            "note": f"first {options.train_samples} training examples of each data set (RTE: "
            f"{min(options.train_samples, 600)}); first "
            f"{options.eval_samples} sentences of each NER evaluation split; GLUE validation splits in full",
        },
        "seeds": options.seeds,
        "environment": environment(),
        "teachers": teachers,
        **summarise(runs, teachers, sizes),
        "runs": runs,
    }
    path = results_dir / "results.json"
    staging = path.with_suffix(".json.partial")
    staging.write_text(json.dumps(payload, indent=2) + "\n")
    staging.replace(path)
    if payload["per_run"]:
        (results_dir / "REPORT.md").write_text(render_markdown(payload))


if __name__ == "__main__":
    main()
