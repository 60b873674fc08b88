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
import dataclasses
import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import load_from_disk
from transformers import AutoTokenizer, Trainer, TrainingArguments, set_seed

from hfkdq.arguments import ModelArguments
from hfkdq.augment import augmented_training_set
from hfkdq.config import DistillationArguments
from hfkdq.environment import capture_environment
from hfkdq.resources import btc_files, resolve_model_name_or_path
from hfkdq.students import make_student
from hfkdq.teacher import prepare_teacher
from hfkdq.teacher_cache import TeacherOutputCache, build_teacher_cache
from hfkdq.trainer import DistillationTrainer
from hfkdq.transfer import mix_transfer, transfer_examples

SHARED = Path(os.environ.get("HFKDQ_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
TEACHER = "sentence-transformers/all-MiniLM-L6-v2"

MAIN_DATA_SETS = ("btc", "conll2003", "sst2", "rte")

PLAIN = dict(ce_weight=1.0, kd_weight=0.0, hidden_weight=0.0, attention_weight=0.0)
KD = dict(ce_weight=1.0, kd_weight=1.0, temperature=2.0, hidden_weight=0.0, attention_weight=0.0)
KD_HIDDEN = dict(KD, hidden_weight=1.0)


@dataclass(frozen=True)
class Run:
    setting: str
    weights: dict
    init: str
    layers: int
    augment: str | None = None
    transfer_ratio: float | None = None  # None: no transfer set; math.inf: all of it

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
    Run("kd_augment", KD, "alternate", 3, augment="all"),
    Run("kd_transfer1", KD, "alternate", 3, transfer_ratio=1.0),
    Run("kd_transfer3", KD, "alternate", 3, transfer_ratio=3.0),
    Run("kd_transferall", KD, "alternate", 3, transfer_ratio=math.inf),
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
    transfer: bool = False  # the training examples after the labeled subset form an unlabeled transfer set
    max_transfer_examples: int | None = None
    extra: dict = field(default_factory=dict)


def _ner_files(name: str) -> dict[str, str]:
    if name == "btc":
        return btc_files()  # embedded in the package (CC BY 4.0), byte for byte ../shared/data/btc
    return {split: str(SHARED / "conll2003" / f"{split}.txt") for split in ("train", "validation", "test")}


def _glue_files(name: str) -> dict[str, str]:
    return {split: str(SHARED / "glue" / name / f"{split}.tsv") for split in ("train", "validation")}


def data_sets(train_samples: int, eval_samples: int | None, full: bool = False) -> dict[str, DataSet]:
    """The study's data sets.

    Subsampled (CPU): the first ``train_samples`` training examples of each. ``full`` (GPU): the full
    training splits (SST-2: an 8k subset, the rest being its transfer set), with epoch budgets that
    give each data set a comparable number of steps, plus the semi-supervised variants
    ``*-semi`` whose un-labeled remainder is the transfer set.
    """
    if not full:
        return {
            "btc": DataSet(
                "btc", "ner", _ner_files("btc"), "test", train_samples, max_eval_samples=eval_samples
            ),
            "conll2003": DataSet(
                "conll2003",
                "ner",
                _ner_files("conll2003"),
                "test",
                train_samples,
                max_eval_samples=eval_samples,
            ),
            "sst2": DataSet(
                "sst2",
                "glue",
                _glue_files("sst2"),
                "validation",
                train_samples,
                task_name="sst2",
                learning_rate=1e-4,
                teacher_learning_rate=1e-4,
            ),
            "rte": DataSet(
                "rte",
                "glue",
                _glue_files("rte"),
                "validation",
                min(train_samples, 600),  # pairs are long: the costliest data set per example
                task_name="rte",
                learning_rate=1e-4,
                teacher_learning_rate=1e-4,
                epochs=4,
                batch_size=16,
            ),
        }
    glue = dict(learning_rate=1e-4, teacher_learning_rate=1e-4)
    return {
        "btc": DataSet("btc", "ner", _ner_files("btc"), "test", None, epochs=5, teacher_epochs=8),
        "conll2003": DataSet(
            "conll2003", "ner", _ner_files("conll2003"), "test", None, epochs=3, teacher_epochs=5
        ),
        "sst2": DataSet(
            "sst2",
            "glue",
            _glue_files("sst2"),
            "validation",
            8000,
            task_name="sst2",
            epochs=5,
            teacher_epochs=5,
            transfer=True,
            **glue,
        ),
        "rte": DataSet(
            "rte",
            "glue",
            _glue_files("rte"),
            "validation",
            None,
            task_name="rte",
            epochs=8,
            teacher_epochs=10,
            batch_size=16,
            **glue,
        ),
        "btc-semi": DataSet(
            "btc-semi", "ner", _ner_files("btc"), "test", 1000, epochs=10, teacher_epochs=15, transfer=True
        ),
        "conll2003-semi": DataSet(
            "conll2003-semi",
            "ner",
            _ner_files("conll2003"),
            "test",
            2000,
            epochs=8,
            teacher_epochs=10,
            transfer=True,
        ),
    }


def smoke_sized(data_set: DataSet) -> DataSet:
    """The data set cut to a few examples and one epoch, to check the study's whole path quickly."""
    return dataclasses.replace(
        data_set,
        max_train_samples=min(data_set.max_train_samples or 48, 48),
        max_eval_samples=48,
        max_transfer_examples=96,
        epochs=1,
        teacher_epochs=1,
    )


def write_transfer_file(data_set: DataSet, path: Path) -> int:
    """The training examples after the labeled subset, without labels, in a --transfer_file format.

    NER: CoNLL without tags (one token per line, blank line between sentences); GLUE: a TSV whose
    header names the task's text column. Returns the number of examples written.
    """
    train = Path(data_set.files["train"])
    if data_set.kind == "ner":
        sentences = [block.splitlines() for block in train.read_text().split("\n\n") if block.strip()]
        rest = sentences[data_set.max_train_samples :][: data_set.max_transfer_examples]
        path.write_text("\n\n".join("\n".join(line.split()[0] for line in s) for s in rest) + "\n")
        return len(rest)
    lines = train.read_text().splitlines()
    header = lines[0].split("\t")
    column = header.index("sentence")
    rest = lines[1 + data_set.max_train_samples :][: data_set.max_transfer_examples]
    path.write_text("sentence\n" + "\n".join(line.split("\t")[column] for line in rest) + "\n")
    return len(rest)


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


def prepare(data_set: DataSet, tokenizer, work: Path, teacher_base: str = TEACHER):
    """The data set's task, its teacher (fine-tuned once, reused on resume), teacher scores, logit cache
    and (where the data set has one) its teacher-labeled transfer set."""
    task = build_task(data_set, tokenizer)
    teacher_dir = work / "teacher"
    model_args = ModelArguments(
        teacher_name_or_path=str(teacher_dir) if (teacher_dir / "config.json").is_file() else teacher_base,
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
    transfer = None
    if data_set.transfer:
        labelled_dir = work / "transfer-labelled"
        if not (labelled_dir / "dataset_info.json").is_file():
            source = work / ("transfer.conll" if data_set.kind == "ner" else "transfer.tsv")
            write_transfer_file(data_set, source)
            # Its labels only mark counted positions: transfer examples learn from the teacher's outputs.
            labelled = transfer_examples(task, source)
            labelled.save_to_disk(str(labelled_dir.with_name("transfer-labelled.partial")))
            labelled_dir.with_name("transfer-labelled.partial").replace(labelled_dir)
        transfer = load_from_disk(str(labelled_dir))
    return task, teacher.model, json.loads(info_file.read_text()), cache, transfer


def training_set(task, tokenizer, run: Run, seed: int, transfer):
    """The run's training set: the labeled set, fresh augmented views of it, or it mixed with the transfer set."""
    if run.augment:
        return augmented_training_set(task, tokenizer, run.augment, 0.5, 0.15, seed)
    if run.transfer_ratio is not None:
        ratio = (
            len(transfer) / len(task.train_dataset) if math.isinf(run.transfer_ratio) else run.transfer_ratio
        )
        return mix_transfer(task.train_dataset, transfer, ratio, seed)
    return task.train_dataset


def run_one(
    data_set: DataSet, task, teacher, cache, tokenizer, run: Run, seed: int, work: Path, transfer=None
) -> dict:
    set_seed(seed)
    student = make_student(teacher, run.layers, run.init)
    train_dataset = training_set(task, tokenizer, run, seed, transfer)
    args = training_arguments(data_set, work / "scratch", seed, len(train_dataset), **run.weights)
    only_logits = run.weights.get("hidden_weight", 0) == 0 and run.weights.get("attention_weight", 0) == 0
    # The cache holds the teacher's logits for the fixed labeled set; augmented views and transfer
    # examples are new inputs, so those runs query the live teacher.
    fixed_inputs = train_dataset is task.train_dataset
    started = time.perf_counter()
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        data_collator=task.data_collator,
        teacher_cache=cache if only_logits and fixed_inputs and run.weights["kd_weight"] > 0 else None,
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
        "augment": run.augment,
        "train_examples": len(train_dataset),
        "transfer_examples": len(train_dataset) - len(task.train_dataset) if run.transfer_ratio else 0,
        "optimizer_steps": result.global_step,
        "score": score(trainer.student, task, data_set.report_split, data_set),
        "train_seconds": round(seconds, 1),
        "train_loss": result.training_loss,
        "device": capture_environment()["device"],
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
    # The defaults are chosen on the four data sets of the study; the *-semi variants (a labeled
    # subset plus a transfer set) are reported beside them, not voted with.
    complete = [ds for ds in per_run if ds in teachers and ds in MAIN_DATA_SETS]
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
    transfer = {}
    for ds, by_run in per_run.items():
        transfer_runs = {name: cell for name, cell in by_run.items() if name.startswith("kd_transfer")}
        if not transfer_runs or ds not in teachers:
            continue
        examples = {}
        for entry in runs:
            if entry["data_set"] == ds:
                examples[entry["run"]] = entry.get("transfer_examples", 0)
        transfer[ds] = {
            "teacher": teachers[ds]["score"],
            "labeled_examples": sizes.get(ds),
            **{
                name: {
                    "mean": cell["mean"],
                    "sd": cell["sd"],
                    "n": cell["n"],
                    "transfer_examples": examples.get(name, 0),
                    "retention_pct": round(100 * cell["mean"] / teachers[ds]["score"], 1)
                    if teachers[ds]["score"] > 0
                    else None,
                }
                for name, cell in by_run.items()
                if name in ("plain-alternate-L3", "kd-alternate-L3") or name in transfer_runs
            },
        }
    return {
        "summary": summary,
        "transfer_sets": transfer,
        "mean_over_data_sets": candidates,
        "chosen": {"best_3_layer_run": chosen, "init": chosen_init},
        "per_run": per_run,
    }


def recorded_environment(output_dir: Path) -> dict:
    """The environment the runs were trained in: ``environment.json`` beside them when they were
    trained elsewhere (the GPU machine), else this one."""
    recorded = output_dir / "environment.json"
    return json.loads(recorded.read_text()) if recorded.is_file() else capture_environment()


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
    parser.add_argument(
        "--full",
        action="store_true",
        help="Full training splits (SST-2: 8k, its rest a transfer set) and the *-semi data sets; for a GPU.",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="48 examples, one epoch: checks the whole path in a minute."
    )
    parser.add_argument("--teacher", default=TEACHER, help="Teacher base: Hub id or local directory.")
    parser.add_argument(
        "--prepare_only", action="store_true", help="Fine-tune teachers and build caches only."
    )
    parser.add_argument(
        "--no_results", action="store_true", help="Write run records only (for several processes at once)."
    )
    parser.add_argument(
        "--deadline_seconds", type=float, default=None, help="Start no new run after this many seconds."
    )
    parser.add_argument(
        "--render_only", action="store_true", help="Rewrite results.json and REPORT.md from the run records."
    )
    options = parser.parse_args()
    began = time.monotonic()
    output_dir, results_dir = Path(options.output_dir), Path(options.results_dir)
    if options.render_only:
        teachers = {
            path.parent.name: json.loads(path.read_text())
            for path in sorted(output_dir.glob("*/teacher.json"))
            if path.parent.name in options.data_sets
        }
        sizes = {
            entry["data_set"]: entry["train_examples"]
            for entry in (json.loads(path.read_text()) for path in output_dir.glob("runs/*/plain-*.json"))
        }
        results_dir.mkdir(parents=True, exist_ok=True)
        write_results(output_dir, results_dir, teachers, sizes, options)
        return

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_name_or_path(options.teacher))
    results_dir.mkdir(parents=True, exist_ok=True)
    available = data_sets(options.train_samples, options.eval_samples, options.full)
    if options.smoke:
        available = {name: smoke_sized(data_set) for name, data_set in available.items()}
    selected = [available[name] for name in options.data_sets]
    prepared, teachers, sizes = {}, {}, {}
    for data_set in selected:
        work = output_dir / data_set.name
        work.mkdir(parents=True, exist_ok=True)
        prepared[data_set.name] = prepare(data_set, tokenizer, work, options.teacher)
        teachers[data_set.name] = prepared[data_set.name][2]
        sizes[data_set.name] = len(prepared[data_set.name][0].train_dataset)
        print(f"{data_set.name}: teacher {teachers[data_set.name]}", flush=True)
    if options.prepare_only:
        return

    runs_wanted = [run for name in options.runs for run in RUNS if run.name == name]
    for run in runs_wanted:
        for seed in options.seeds:
            for data_set in selected:
                record = output_dir / "runs" / data_set.name / f"{run.name}-seed{seed}.json"
                if record.is_file() or (run.transfer_ratio is not None and not data_set.transfer):
                    continue
                if options.deadline_seconds and time.monotonic() - began > options.deadline_seconds:
                    print(f"deadline reached; not starting {record.name}", flush=True)
                    return
                task, teacher, _, cache, transfer = prepared[data_set.name]
                entry = run_one(
                    data_set, task, teacher, cache, tokenizer, run, seed, output_dir / data_set.name, transfer
                )
                record.parent.mkdir(parents=True, exist_ok=True)
                record.write_text(json.dumps(entry, indent=2) + "\n")
                print(json.dumps(entry), flush=True)
                if not options.no_results:
                    write_results(output_dir, results_dir, teachers, sizes, options)
    if not options.no_results:
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
        f"Best 3-layer run by the mean over {', '.join(MAIN_DATA_SETS)}: **{chosen['best_3_layer_run']}** "
        f"(init {chosen['init']}).",
        "",
        "## The chosen defaults: teacher, plain and distilled (3-layer student)",
        "",
        "| data set | teacher | plain | distilled | distilled - plain | retention |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for ds, row in payload["summary"].items():
        if not (row["plain"] and row["distilled"]):
            continue
        gain = row["distilled"]["mean"] - row["plain"]["mean"]
        lines.append(
            f"| {ds} | {row['teacher']:.2f} | {row['plain']['mean']:.2f} ± {row['plain']['sd']:.2f} | "
            f"{row['distilled']['mean']:.2f} ± {row['distilled']['sd']:.2f} | {gain:+.2f} | {row['retention_pct']}% |"
        )
    if payload.get("transfer_sets"):
        lines += [
            "",
            "## Transfer sets: the teacher labels un-labeled text (3-layer student, logit KD)",
            "",
            "| data set | labeled | teacher | run | transfer examples | metric | retention |",
            "|---|---:|---:|---|---:|---:|---:|",
        ]
        for ds, row in payload["transfer_sets"].items():
            for name, cell in row.items():
                if not isinstance(cell, dict):
                    continue
                lines.append(
                    f"| {ds} | {row['labeled_examples']} | {row['teacher']:.2f} | {name} | "
                    f"{cell['transfer_examples']} | {cell['mean']:.2f} ± {cell['sd']:.2f} | {cell['retention_pct']}% |"
                )
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
            "note": (
                "full training splits (SST-2: its first 8,000 sentences, the other 59,349 being its transfer "
                "set); *-semi: the first 1,000 (BTC) / 2,000 (CoNLL-2003) training sentences labeled, the rest "
                "of the training split without tags as the transfer set; evaluation splits in full"
            )
            if options.full
            else f"first {options.train_samples} training examples of each data set (RTE: "
            f"{min(options.train_samples, 600)}); first "
            f"{options.eval_samples} sentences of each NER evaluation split; GLUE validation splits in full",
        },
        "seeds": options.seeds,
        "environment": recorded_environment(output_dir),
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
