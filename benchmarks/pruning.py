"""Pruned + recovered students next to the unpruned one, and a mixed-precision search (issue 18).

Per task (CoNLL-2003, SST-2):
  1. the recipe fine-tunes the packaged MiniLM-L6 teacher and distils a 3-layer student from its
     logit cache (`--teacher_cache auto`), as `hfkdq distill` does;
  2. importance methods compared at ffn_keep 0.5 before recovery (fp32 validation metric);
  3. for each ffn_keep: Taylor pruning of the student, recovery from the same cache (teacher forwards
     counted: must be 0), saved as a stock model;
  4. every student (unpruned and pruned) exported to ONNX dynamic int8, scored on the evaluation split,
     sized, and timed side by side: interleaved rounds, b1 and b32, seq 128;
  5. the mixed-precision search (`hfkdq.quantization.mixed_precision`) on the validation split, with a
     strict budget, for every student whose full int8 misses it.

    nice -n 5 python benchmarks/pruning.py --output_dir /tmp/pruning-bench   # the study (not yet timed to its end)
    python benchmarks/pruning.py --preset quick --output_dir /tmp/pq        # every stage on a few dozen examples (10 min)

Writes benchmarks/results/<name>/results.json and REPORT.md (with --name; default pruning_cpu).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PRESETS = {
    # What fits beside four other jobs on 2 CPU cores in about 50 minutes under nice -n 5 (this run had
    # roughly a third of one core): 500 training examples per task, 64 tokens, 2 epochs of teacher and
    # student training, 1 of recovery.
    # The study the issue asks for, at the headline benchmark's scale (2,000 training examples per task).
    # Not yet run to the end: in its session the machine's load (10-15 on 2 cores) stopped it during
    # the teacher's fine-tuning (see the README, "Pruning a student").
    "full": dict(
        train=2000,
        eval=None,
        seq=128,
        teacher_epochs=3,
        epochs=3,
        batch=16,
        recovery_epochs=3,
        keeps={"conll2003": (0.75, 0.5, 0.25), "sst2": (0.75, 0.5, 0.25)},
        compare_importance=("conll2003", "sst2"),
        mixed_tasks=("conll2003", "sst2"),
        importance_samples=512,
        compare_eval=1000,
        rounds=5,
        repeats_b1=10,
        repeats_b32=3,
        sensitivity_samples=256,
        budget=0.1,
        mixed_students=("unpruned", "keep-0.5"),
        mixed_searches=1,
    ),
    "quick": dict(
        train=32,
        eval=24,
        teacher_epochs=1,
        epochs=1,
        batch=8,
        recovery_epochs=1,
        keeps={"conll2003": (0.5,), "sst2": (0.5,)},
        compare_importance=("conll2003",),
        mixed_tasks=("conll2003",),
        importance_samples=16,
        compare_eval=24,
        rounds=1,
        repeats_b1=1,
        repeats_b32=1,
        sensitivity_samples=8,
        budget=0.0,
        seq=48,
        mixed_students=("unpruned", "keep-0.5"),
        mixed_searches=1,
    ),
}


def recipe_argv(task: str, preset: dict, output_dir: Path) -> tuple[str, list[str]]:
    if task == "conll2003":
        data = SHARED / "conll2003"
        flags = [
            "--train_file",
            data / "train.txt",
            "--validation_file",
            data / "validation.txt",
            "--test_file",
            data / "test.txt",
        ]
        script = "distill_bert_ner.py"
        teacher_lr = 1e-4
    else:
        data = SHARED / "glue" / "sst2"
        flags = [
            "--task_name",
            "sst2",
            "--train_file",
            data / "train.tsv",
            "--validation_file",
            data / "validation.tsv",
        ]
        script = "distill_bert_glue.py"
        teacher_lr = 1e-4
    flags += ["--max_train_samples", preset["train"]]
    if preset["eval"]:
        flags += ["--max_eval_samples", preset["eval"]]
    flags += [
        "--output_dir",
        output_dir,
        "--teacher_cache",
        "auto",
        "--num_train_epochs",
        preset["epochs"],
        "--teacher_num_train_epochs",
        preset["teacher_epochs"],
        "--learning_rate",
        1e-4,
        "--teacher_learning_rate",
        teacher_lr,
        "--per_device_train_batch_size",
        preset["batch"],
        "--per_device_eval_batch_size",
        64,
        "--max_seq_length",
        preset["seq"],
        "--warmup_ratio",
        0.1,
        "--weight_decay",
        0.01,
        "--seed",
        42,
        "--kd_weight",
        1,
        "--temperature",
        2,
        "--student_layers",
        "alternate",
        "--save_strategy",
        "no",
        "--eval_strategy",
        "no",
        "--report_to",
        "none",
        "--logging_steps",
        50,
        "--overwrite_output_dir",
        "true",
    ]
    return script, [str(flag) for flag in flags]


def distil(task: str, preset: dict, run_dir: Path) -> None:
    if (run_dir / "results.json").is_file():
        print(f"[{task}] distillation run already finished in {run_dir}", flush=True)
        return
    script, argv = recipe_argv(task, preset, run_dir)
    subprocess.run([sys.executable, str(ROOT / "recipes" / script), *argv], check=True)


def load_task(task: str, preset: dict, run_dir: Path):
    """The recipe's own arguments and TaskData, parsed from the same flags: same examples, same cache keys."""
    from hfkdq.config import DistillationArguments
    from hfkdq.pipeline import ModelArguments, load_tokenizer
    from hfkdq.recipe_args import parse_recipe_args

    if task == "conll2003":
        from hfkdq.tasks.ner import NerDataArguments as data_arguments
        from hfkdq.tasks.ner import build_ner_task as build
    else:
        from hfkdq.tasks.glue import GlueDataArguments as data_arguments
        from hfkdq.tasks.glue import build_glue_task as build
    _, argv = recipe_argv(task, preset, run_dir)
    model_args, data_args, training_args = parse_recipe_args(
        (ModelArguments, data_arguments, DistillationArguments), argv
    )
    tokenizer = load_tokenizer(model_args)
    return build(data_args, tokenizer), training_args, tokenizer


def main_metric_of(task) -> str:
    return task.main_metric


def fp32_metric(model, dataset, task) -> float:
    from hfkdq.evaluation import evaluate

    return evaluate(model, dataset, task.data_collator, task.compute_metrics, batch_size=64).metrics[
        task.main_metric
    ]


def prune_students(task_name: str, preset: dict, run_dir: Path, out: Path) -> dict:
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    from hfkdq.pruning import prune_model
    from hfkdq.pruning.recovery import recover
    from hfkdq.teacher_cache import TeacherOutputCache

    task, training_args, tokenizer = load_task(task_name, preset, run_dir)
    auto = AutoModelForTokenClassification if task_name == "conll2003" else AutoModelForSequenceClassification
    student = auto.from_pretrained(run_dir / "student").eval()
    teacher = auto.from_pretrained(run_dir / "teacher").eval()
    cache = TeacherOutputCache.load(run_dir / "teacher-cache")
    validation = task.features["validation"]
    compare_set = validation.select(range(min(preset["compare_eval"], len(validation))))
    record = {"importance_before_recovery": {}, "students": {}}
    methods = ("taylor", "fisher", "magnitude") if task_name in preset["compare_importance"] else ()
    if methods:
        record["importance_before_recovery"]["unpruned"] = fp32_metric(student, compare_set, task)
        record["importance_before_recovery"]["examples"] = len(compare_set)
    for method in methods:
        model = copy.deepcopy(student)
        started = time.perf_counter()
        prune_model(
            model,
            0.5,
            task.train_dataset,
            task.data_collator,
            importance=method,
            max_samples=preset["importance_samples"],
        )
        record["importance_before_recovery"][method] = {
            "metric": fp32_metric(model, compare_set, task),
            "scoring_seconds": round(time.perf_counter() - started, 1),
        }
        print(
            f"[{task_name}] ffn_keep 0.5 {method} before recovery: {record['importance_before_recovery'][method]}",
            flush=True,
        )
    for keep in preset["keeps"][task_name]:
        target = out / task_name / f"keep-{keep}"
        if (target / "config.json").is_file():
            record["students"][str(keep)] = json.loads((target / "pruning_record.json").read_text())
            continue
        model = copy.deepcopy(student)
        report = prune_model(
            model, keep, task.train_dataset, task.data_collator, max_samples=preset["importance_samples"]
        )
        before = fp32_metric(model, compare_set, task)
        calls = []
        handle = teacher.register_forward_hook(lambda *_, calls=calls: calls.append(1))
        started = time.perf_counter()
        args = copy.copy(training_args)
        args.output_dir = str(out / task_name / f"recovery-{keep}")
        trainer = recover(
            model,
            teacher,
            args,
            task.train_dataset,
            task.data_collator,
            processing_class=tokenizer,
            teacher_cache=cache,
            num_train_epochs=preset["recovery_epochs"],
        )
        handle.remove()
        trainer.save_model(str(target))
        tokenizer.save_pretrained(target)
        entry = {
            "ffn_keep": keep,
            "width": report["width"],
            "original_width": report["original_width"],
            "metric_before_recovery_validation": before,
            "recovery_seconds": round(time.perf_counter() - started, 1),
            "teacher_forwards_during_recovery": len(calls),
        }
        (target / "pruning_record.json").write_text(json.dumps(entry, indent=1))
        record["students"][str(keep)] = entry
        print(f"[{task_name}] keep {keep}: {entry}", flush=True)
    return record


def measure(task_name: str, preset: dict, run_dir: Path, out: Path, pruning: dict) -> dict:
    from hfkdq.evaluation import evaluate, weights_size_bytes
    from hfkdq.quantization import load_variant, quantize
    from hfkdq.quantization.onnx import load_onnx

    task, _, _ = load_task(task_name, preset, run_dir)
    split = "test" if "test" in task.features else "validation"
    dataset = task.features[split]
    students = {"unpruned": run_dir / "student"} | {
        f"keep-{keep}": out / task_name / f"keep-{keep}" for keep in preset["keeps"][task_name]
    }
    rows = {}
    int8 = {}
    for name, path in students.items():
        variant_dir = out / task_name / "int8" / name
        if not (variant_dir / "model.onnx").is_file():
            quantize(path, "onnx-int8", variant_dir, overwrite=True)
        fp32 = load_variant(path)
        int8[name] = load_onnx(variant_dir, "token" if task_name == "conll2003" else "sequence")
        rows[name] = {
            "path": str(path),
            "fp32_metric": fp32_metric(fp32, dataset, task),
            "int8_metric": evaluate(
                int8[name], dataset, task.data_collator, task.compute_metrics, 64
            ).metrics[task.main_metric],
            "fp32_bytes": weights_size_bytes(path),
            "int8_bytes": weights_size_bytes(variant_dir),
            "params": sum(p.numel() for p in fp32.parameters()),
            "intermediate_size": fp32.config.intermediate_size,
        }
        if name != "unpruned":
            rows[name] |= pruning["students"][name.removeprefix("keep-")]
        print(f"[{task_name}] {name}: {rows[name]}", flush=True)
    time_side_by_side(task_name, int8, rows, preset, preset["rounds"])
    return {"eval_split": split, "eval_examples": len(dataset), "main_metric": task.main_metric, "rows": rows}


def time_side_by_side(task_name: str, int8: dict, rows: dict, preset: dict, rounds: int) -> None:
    """Every int8 student timed in each round (once per batch size), so machine load hits all alike;
    medians over rounds, and each row's speed-up and retention against the unpruned one."""
    from hfkdq.evaluation import measure_latency

    timings = {name: {"b1": [], "b32": []} for name in int8}
    for round_index in range(rounds):
        for name, model in int8.items():
            timings[name]["b1"].append(measure_latency(model, 1, 128, preset["repeats_b1"], 2))
            timings[name]["b32"].append(measure_latency(model, 32, 128, preset["repeats_b32"], 1))
        print(f"[{task_name}] latency round {round_index + 1}/{rounds} done", flush=True)
    base = rows["unpruned"]
    for name, row in rows.items():
        row["int8_latency_ms"] = {batch: statistics.median(values) for batch, values in timings[name].items()}
        row["int8_latency_rounds_ms"] = timings[name]
        row["int8_retention_vs_unpruned"] = (
            row["int8_metric"] / base["int8_metric"] if base["int8_metric"] else None
        )
    for row in rows.values():  # after the loop above, which gives the unpruned row its latency
        row["int8_speedup_vs_unpruned"] = {
            batch: base["int8_latency_ms"][batch] / row["int8_latency_ms"][batch] for batch in ("b1", "b32")
        }


def retime(task_name: str, preset: dict, out: Path, entry: dict, rounds: int) -> None:
    """The finished task's int8 students timed again, side by side, on an otherwise idle machine."""
    from hfkdq.quantization.onnx import load_onnx

    head = "token" if task_name == "conll2003" else "sequence"
    rows = entry["measured"]["rows"]
    int8 = {name: load_onnx(out / task_name / "int8" / name, head) for name in rows}
    load_at_start = os.getloadavg()[0]
    time_side_by_side(task_name, int8, rows, preset, rounds)
    entry["retimed"] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": rounds,
        "load_average": [load_at_start, os.getloadavg()[0]],
    }


def mixed_precision(task_name: str, preset: dict, run_dir: Path, out: Path, measured: dict) -> dict:
    """The search on the validation split, strict budget, for every student whose full int8 misses it."""
    from hfkdq.evaluation import evaluate, measure_latency
    from hfkdq.quantization import load_variant
    from hfkdq.quantization.artifacts import inspect_model_dir, read_metadata
    from hfkdq.quantization.mixed_precision import BudgetUnreachableError, search_mixed_precision
    from hfkdq.quantization.onnx import load_onnx

    task, _, _ = load_task(task_name, preset, run_dir)
    validation = task.features["validation"]
    head = "token" if task_name == "conll2003" else "sequence"
    budget = preset["budget"]
    results = {"budget_points": budget, "split": "validation", "students": {}}
    for name, row in measured["rows"].items():
        if name not in preset["mixed_students"]:
            continue
        full = load_onnx(out / task_name / "int8" / name, head)
        fp32 = fp32_metric(load_variant(row["path"]), validation, task)
        full_metric = evaluate(full, validation, task.data_collator, task.compute_metrics, 64).metrics[
            task.main_metric
        ]
        entry = {
            "fp32_metric": fp32,
            "full_int8_metric": full_metric,
            "full_int8_drop": (fp32 - full_metric) * 100,
        }
        results["students"][name] = entry
        if entry["full_int8_drop"] <= budget:
            entry["search"] = "not needed: full int8 meets the budget"
            continue
        if sum("search_seconds" in e for e in results["students"].values()) >= preset["mixed_searches"]:
            entry["search"] = "not run (one search per task fits the time budget)"
            continue
        started = time.perf_counter()
        try:
            variant = search_mixed_precision(
                inspect_model_dir(row["path"]),
                out / task_name / "mixed" / name,
                eval_dataset=validation,
                data_collator=task.data_collator,
                compute_metrics=task.compute_metrics,
                main_metric=task.main_metric,
                reference_metric=fp32,
                max_metric_drop=budget,
                sensitivity_samples=preset["sensitivity_samples"],
                overwrite=True,
            )
        except BudgetUnreachableError as error:
            entry["search"] = f"unreachable: {error}"
            continue
        record = read_metadata(variant)["mixed_precision"]
        mixed = load_onnx(variant, head)
        latency = {"mixed": {"b1": [], "b32": []}, "full": {"b1": [], "b32": []}}
        for _ in range(preset["rounds"]):
            for label, model in (("full", full), ("mixed", mixed)):
                latency[label]["b1"].append(measure_latency(model, 1, 128, preset["repeats_b1"], 2))
                latency[label]["b32"].append(measure_latency(model, 32, 128, preset["repeats_b32"], 1))
        medians = {label: {b: statistics.median(v) for b, v in by.items()} for label, by in latency.items()}
        test_metric = None
        if "test" in task.features:
            test_metric = evaluate(
                mixed, task.features["test"], task.data_collator, task.compute_metrics, 64
            ).metrics[task.main_metric]
        entry |= {
            "search_seconds": round(time.perf_counter() - started, 1),
            "mixed_drop": record["metric_drop"],
            "nodes_in_fp32": record["nodes_in_fp32"],
            "nodes_total": len(record["nodes_in_fp32"]) + len(record["nodes_in_int8"]),
            "probes": record["probes"],
            "latency_ms": medians,
            "speed_given_up": {b: medians["mixed"][b] / medians["full"][b] for b in ("b1", "b32")},
            "mixed_test_metric": test_metric,
        }
        print(f"[{task_name}] mixed precision {name}: {entry}", flush=True)
    return results


HEADLINE_KEEP = 0.5
"""The share of FFN neurons the issue's targets are set at."""
TASK_KEYS = {"conll2003": "ner", "sst2": "sst2"}


def pruning_headline(results: dict, keep: float = HEADLINE_KEEP) -> dict:
    """The issue's `headline` keys from the finished tasks (None where a task or figure is missing).

    Retention is the pruned int8 student's metric over the unpruned int8 student's, per task; a
    speed-up is the worse task's (a target holds "on both tasks" only if it holds on the worse one).
    `mixed_precision_found` is true when some search met the budget where full int8 missed it.
    """
    tasks = results.get("tasks") or {}
    rows = {
        task: (data.get("measured") or {}).get("rows", {}).get(f"keep-{keep}") for task, data in tasks.items()
    }
    headline: dict = {"pruned_ffn_keep": keep}
    for task, key in TASK_KEYS.items():
        row = rows.get(task) or {}
        value = row.get("int8_retention_vs_unpruned")
        headline[f"pruned_{key}_retention_vs_unpruned"] = round(value, 4) if value is not None else None
    for batch in ("b1", "b32"):
        speedups = [row["int8_speedup_vs_unpruned"][batch] for row in rows.values() if row]
        headline[f"pruned_speedup_vs_unpruned_{batch}"] = round(min(speedups), 3) if speedups else None
    searches = [
        entry
        for data in tasks.values()
        for entry in ((data.get("mixed_precision") or {}).get("students") or {}).values()
        if entry["full_int8_drop"] > (data.get("mixed_precision") or {}).get("budget_points", 0)
    ]
    found = [entry for entry in searches if "mixed_drop" in entry]
    headline["mixed_precision_found"] = bool(found) if searches else None
    return headline


def render(results: dict) -> str:
    lines = [
        "# Pruned + recovered students and mixed precision (issue 18)",
        "",
        f"Report written {results['date']}; measured on {results['machine']}, torch threads "
        f"{results['torch_threads']}. Load average (1 min) at the start and the end of each task's run: "
        + ", ".join(
            f"{task} {' / '.join(f'{value:.1f}' for value in data['load_average'])}"
            for task, data in results["tasks"].items()
            if data.get("load_average")
        )
        + (" not recorded" if not any(data.get("load_average") for data in results["tasks"].values()) else "")
        + " (2 cores)."
        + "".join(
            f" {task}: latencies re-timed {data['retimed']['date']} over {data['retimed']['rounds']} rounds "
            f"(load {' / '.join(f'{value:.1f}' for value in data['retimed']['load_average'])})."
            for task, data in results["tasks"].items()
            if data.get("retimed")
        )
        + f" Scale: {results['scale']}",
        "",
        "## FFN pruning (Taylor importance, recovered by distillation from the teacher's logit cache)",
        "",
        "| task | student | FFN width | params | fp32 | ONNX int8 | int8 retention vs unpruned | int8 b1 ms | int8 b32 ms | speed-up b1 | speed-up b32 | int8 MB | teacher forwards in recovery |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task, data in results["tasks"].items():
        for name, row in data["measured"]["rows"].items():
            lines.append(
                f"| {task} ({data['measured']['eval_split']} {data['measured']['main_metric']}) | {name} | "
                f"{row['intermediate_size']} | {row['params'] / 1e6:.1f}M | {row['fp32_metric'] * 100:.2f} | "
                f"{row['int8_metric'] * 100:.2f} | {row['int8_retention_vs_unpruned']:.4f} | "
                f"{row['int8_latency_ms']['b1']:.2f} | {row['int8_latency_ms']['b32']:.1f} | "
                f"{row['int8_speedup_vs_unpruned']['b1']:.2f}x | {row['int8_speedup_vs_unpruned']['b32']:.2f}x | "
                f"{row['int8_bytes'] / 1e6:.1f} | {row.get('teacher_forwards_during_recovery', '–')} |"
            )
    lines += [
        "",
        f"## Headline (ffn_keep {results['headline']['pruned_ffn_keep']})",
        "",
        "| key | measured | target | met |",
        "|---|---:|---:|:---:|",
    ]
    targets = {
        "pruned_ner_retention_vs_unpruned": (">= 0.99", lambda v: v >= 0.99),
        "pruned_sst2_retention_vs_unpruned": (">= 0.99", lambda v: v >= 0.99),
        "pruned_speedup_vs_unpruned_b1": (">= 1.2", lambda v: v >= 1.2),
        "pruned_speedup_vs_unpruned_b32": (">= 1.2", lambda v: v >= 1.2),
        "mixed_precision_found": ("true", lambda v: v is True),
    }
    for key, (target, passes) in targets.items():
        value = results["headline"].get(key)
        met = "–" if value is None else ("yes" if passes(value) else "**no**")
        lines.append(f"| `{key}` | {'–' if value is None else value} | {target} | {met} |")
    lines += [
        "",
        "## Importance before recovery (ffn_keep 0.5, fp32, validation)",
        "",
        "| task | unpruned | taylor | fisher | magnitude |",
        "|---|---:|---:|---:|---:|",
    ]
    for task, data in results["tasks"].items():
        imp = data["pruning"]["importance_before_recovery"]
        if not imp:
            continue
        lines.append(
            f"| {task} ({imp['examples']} examples) | {imp['unpruned'] * 100:.2f} | "
            + " | ".join(f"{imp[m]['metric'] * 100:.2f}" for m in ("taylor", "fisher", "magnitude"))
            + " |"
        )
    lines += [
        "",
        f"## Mixed precision (validation split; budget: at most {results['settings']['budget']} metric points "
        "below the fp32 student)",
        "",
        "| task | student | fp32 | full int8 drop | mixed drop | MatMuls/Gathers kept fp32 | mixed / full int8 latency b1 | b32 | search s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task, data in results["tasks"].items():
        mp = data.get("mixed_precision")
        if mp is None:
            continue
        for name, entry in mp["students"].items():
            if "mixed_drop" in entry:
                lines.append(
                    f"| {task} | {name} | {entry['fp32_metric'] * 100:.2f} | {entry['full_int8_drop']:.2f} | "
                    f"{entry['mixed_drop']:.2f} | {len(entry['nodes_in_fp32'])} of {entry['nodes_total']} | "
                    f"{entry['speed_given_up']['b1']:.2f}x | {entry['speed_given_up']['b32']:.2f}x | {entry['search_seconds']} |"
                )
            else:
                lines.append(
                    f"| {task} | {name} | {entry['fp32_metric'] * 100:.2f} | {entry['full_int8_drop']:.2f} | "
                    f"{entry['search']} | | | | |"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=PRESETS, default="full")
    parser.add_argument("--output_dir", required=True, type=Path)
    parser.add_argument("--name", default="pruning_cpu", help="benchmarks/results/<name>/ gets the results.")
    parser.add_argument("--tasks", default="conll2003,sst2")
    parser.add_argument(
        "--report_only", action="store_true", help="Join the finished tasks' files; run nothing."
    )
    parser.add_argument(
        "--retime",
        type=int,
        default=None,
        metavar="ROUNDS",
        help="Time the finished tasks' int8 students again, side by side, over ROUNDS rounds; train nothing.",
    )
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    torch.set_num_threads(2)
    results = {
        "preset": args.preset,
        "settings": preset,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch_threads": torch.get_num_threads(),
        "scale": (
            f"teacher = packaged all-MiniLM-L6-v2 fine-tuned here ({preset['teacher_epochs']} epochs), student = its "
            f"layers 0, 2, 4 (3 x 384, FFN 1536) distilled for {preset['epochs']} epochs, {preset['train']} training "
            f"examples per task, max {preset['seq']} tokens, evaluation on "
            + (
                f"the first {preset['eval']} examples of each split;"
                if preset["eval"]
                else "every example of each split;"
            )
            + f" recovery = {preset['recovery_epochs']} epoch(s) of the same distillation from the cache; latency "
            f"seq 128, {preset['rounds']} interleaved rounds (medians)."
        ),
        "tasks": {},
    }
    target = ROOT / "benchmarks" / "results" / args.name
    target.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for task in args.tasks.split(",") if args.retime else []:
        path = target / f"{task}.json"
        if path.is_file():
            entry = json.loads(path.read_text())
            retime(task, preset, args.output_dir, entry, args.retime)
            path.write_text(json.dumps(entry, indent=1, default=str) + "\n")
    for task in [] if args.report_only or args.retime else args.tasks.split(","):
        run_dir = args.output_dir / task / "run"
        load_at_start = os.getloadavg()[0]
        distil(task, preset, run_dir)
        pruning = prune_students(task, preset, run_dir, args.output_dir)
        measured = measure(task, preset, run_dir, args.output_dir, pruning)
        entry = {
            "distillation": json.loads((run_dir / "results.json").read_text())
            .get("student", {})
            .get("metrics"),
            "pruning": pruning,
            "measured": measured,
        }
        # Written before the search too: a session that ends during the search keeps the pruning results.
        (target / f"{task}.json").write_text(json.dumps(entry, indent=1, default=str) + "\n")
        if task in preset["mixed_tasks"]:
            entry["mixed_precision"] = mixed_precision(task, preset, run_dir, args.output_dir, measured)
        entry["wall_seconds"] = round(time.perf_counter() - started, 1)
        entry["load_average"] = [load_at_start, os.getloadavg()[0]]
        (target / f"{task}.json").write_text(json.dumps(entry, indent=1, default=str) + "\n")
    # One task per process lets both run side by side; the report joins whatever tasks have finished.
    for task in ("conll2003", "sst2"):
        if (target / f"{task}.json").is_file():
            results["tasks"][task] = json.loads((target / f"{task}.json").read_text())
    results["headline"] = pruning_headline(results)
    (target / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (target / "REPORT.md").write_text(render(results))
    print(render(results), flush=True)


if __name__ == "__main__":
    main()
