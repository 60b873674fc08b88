"""REPORT.md and pareto.png of the headline benchmark, rendered from its results.json alone.

Kept apart from `headline.py` (which runs the stages) so a report can be re-rendered without
re-running anything: ``python benchmarks/headline.py --render_only --name mpnet_cpu``.

A hand-written analysis survives re-rendering: everything below the ANALYSIS_MARKER line of an
existing REPORT.md is carried over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ANALYSIS_MARKER = "<!-- analysis: written by hand, kept when the report is re-rendered -->"

# (key, what it is, target test, target as words); a target of None is a name, not a figure.
TARGETS = (
    ("best_student", "the int8 student with the highest retention on its worse task", None, ""),
    ("best_ner_retention", "best int8 student / teacher, CoNLL-2003 test F1", lambda v: v >= 0.97, ">= 0.97"),
    (
        "best_sst2_retention",
        "best int8 student / teacher, SST-2 validation accuracy",
        lambda v: v >= 0.97,
        ">= 0.97",
    ),
    (
        "best_speedup_b1",
        "fp32 teacher / best int8 student, batch 1, seq 128 (worse task)",
        lambda v: v >= 15,
        ">= 15",
    ),
    (
        "best_speedup_b32",
        "fp32 teacher / best int8 student, batch 32, seq 128 (worse task)",
        lambda v: v >= 15,
        ">= 15",
    ),
    ("fast_student", "the int8 student with the highest speed-up (its better-retaining variant)", None, ""),
    ("fast_ner_retention", "fast int8 student / teacher, CoNLL-2003 test F1", lambda v: v >= 0.95, ">= 0.95"),
    (
        "fast_sst2_retention",
        "fast int8 student / teacher, SST-2 validation accuracy",
        lambda v: v >= 0.95,
        ">= 0.95",
    ),
    (
        "fast_speedup_b1",
        "fp32 teacher / fast int8 student, batch 1, seq 128 (worse task)",
        lambda v: v >= 25,
        ">= 25",
    ),
    (
        "fast_speedup_b32",
        "fp32 teacher / fast int8 student, batch 32, seq 128 (worse task)",
        lambda v: v >= 25,
        ">= 25",
    ),
    (
        "ner_transfer_gain",
        "KD + transfer - plain, best student, CoNLL-2003 test F1 (points, mean over seeds)",
        lambda v: v >= 2.0,
        ">= 2.0",
    ),
    (
        "sst2_transfer_gain",
        "KD + transfer - plain, best student, SST-2 accuracy (points, mean over seeds)",
        lambda v: v >= 2.0,
        ">= 2.0",
    ),
    # From benchmarks/pruning.py (its own students: see `pruning_source`).
    ("pruned_ffn_keep", "FFN share kept by the pruned student below", None, ""),
    (
        "pruned_ner_retention_vs_unpruned",
        "pruned + recovered int8 / unpruned int8 student, CoNLL-2003 test F1",
        lambda v: v >= 0.99,
        ">= 0.99",
    ),
    (
        "pruned_sst2_retention_vs_unpruned",
        "pruned + recovered int8 / unpruned int8 student, SST-2 validation accuracy",
        lambda v: v >= 0.99,
        ">= 0.99",
    ),
    (
        "pruned_speedup_vs_unpruned_b1",
        "unpruned / pruned int8 latency, batch 1, seq 128 (worse task)",
        lambda v: v >= 1.2,
        ">= 1.2",
    ),
    (
        "pruned_speedup_vs_unpruned_b32",
        "unpruned / pruned int8 latency, batch 32, seq 128 (worse task)",
        lambda v: v >= 1.2,
        ">= 1.2",
    ),
    (
        "mixed_precision_found",
        "the mixed-precision search met a strict budget that full int8 missed",
        lambda v: v is True,
        "true",
    ),
)
TASKS = (("conll2003", "CoNLL-2003", "test", "f1"), ("sst2", "SST-2", "validation", "accuracy"))


def headline_table(headline: dict[str, Any]) -> str:
    lines = ["| key | measured | target | met |", "|---|---:|---:|:---:|"]
    for key, meaning, passes, target in TARGETS:
        value = headline.get(key)
        if passes is None:
            lines.append(f"| `{key}`: {meaning} | {value or '–'} | | |")
            continue
        met = "–" if value is None else ("yes" if passes(value) else "**no**")
        shown = "–" if value is None else (str(value).lower() if isinstance(value, bool) else f"{value:g}")
        lines.append(f"| `{key}`: {meaning} | {shown} | {target} | {met} |")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _metric(results: dict, role: str, split: str, metric: str) -> float | None:
    return ((results.get(role) or {}).get("metrics") or {}).get(split, {}).get(metric)


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}x"


def students_table(payload: dict[str, Any]) -> str:
    """Per task and student: teacher, plain, KD, KD + transfer (fp32), then each int8 against the teacher."""
    stages, table = payload["stages"], payload.get("candidates") or {}
    lines = [
        "| task (split) | student | teacher | plain | KD | KD + transfer | int8 KD (retention) | "
        "int8 KD + transfer (retention) | speed-up b1 / b32 | bytes / teacher |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task, title, split, metric in TASKS:
        for student, student_title in (payload.get("students") or {}).items():
            kd = stages.get(f"{task}-{student}") or {}
            transfer = stages.get(f"{task}-{student}-transfer") or {}
            if not kd and not transfer:
                lines.append(f"| {title} ({split}) | {student_title} | not run | | | | | | | |")
                continue
            int8 = (table.get(f"{student}-kd") or {}).get(task) or {}
            int8_transfer = (table.get(f"{student}-kd-transfer") or {}).get(task) or {}
            teacher = _metric(kd or transfer, "teacher", split, metric)

            def quantized(figures: dict) -> str:
                if not figures:
                    return "–"
                return (
                    f"{_pct(figures['metric'])} ({figures['retention']:.3f})"
                    if figures.get("retention")
                    else "–"
                )

            speed = int8 or int8_transfer
            lines.append(
                f"| {title} ({split}) | {student_title} | {_pct(teacher)} | {_pct(_metric(kd, 'plain_student', split, metric))} | "
                f"{_pct(_metric(kd, 'student', split, metric))} | {_pct(_metric(transfer, 'student', split, metric))} | "
                f"{quantized(int8)} | {quantized(int8_transfer)} | {_x(speed.get('speedup_b1'))} / "
                f"{_x(speed.get('speedup_b32'))} | {speed.get('size_ratio', '–')} |"
            )
    return "\n".join(lines)


def teacher_table(stages: dict[str, Any]) -> str:
    """Each task's teacher (trained in its first stage): its metric, epochs, and whether it had learned."""
    lines = [
        "| task (split) | teacher | epochs run | best epoch | still improving at its last epoch | chance level |",
        "|---|---:|---:|---:|:---:|---:|",
    ]
    for task, title, split, metric in TASKS:
        results = next(
            (
                results
                for name, results in stages.items()
                if name.startswith(f"{task}-") and (results.get("teacher") or {}).get("learning_curve")
            ),
            None,
        )
        if results is None:
            lines.append(f"| {title} ({split}) | not run | | | | |")
            continue
        teacher = results["teacher"]
        values = [entry.get(f"eval_{metric}") for entry in teacher["learning_curve"]]
        best = max(range(len(values)), key=lambda index: values[index] or 0.0) + 1 if values else None
        improving = {True: "**yes**", False: "no", None: "–"}[teacher.get("still_improving")]
        chance = (teacher.get("chance") or {}).get("chance_level")
        lines.append(
            f"| {title} ({split}) | {_pct(_metric(results, 'teacher', split, metric))} | {len(values)} | {best} | "
            f"{improving} | {_pct(chance)} |"
        )
    return "\n".join(lines)


def transfer_gain_table(gains: dict[str, Any]) -> str:
    """KD + transfer minus plain training of the best student, per seed; the headline's gain is the mean."""
    lines = ["| task | student | seeds | gain per seed (points) | mean ± sd |", "|---|---|---|---|---:|"]
    for task, title, _, _ in TASKS:
        entry = gains.get(task)
        if not entry or not entry["gains"]:
            continue
        spread = f" ± {entry['sd']:.2f}" if entry.get("sd") is not None else " (one seed)"
        lines.append(
            f"| {title} | {entry['student']} | {', '.join(map(str, entry['seeds']))} | "
            f"{', '.join(f'{gain:+.2f}' for gain in entry['gains'])} | {entry['mean']:+.2f}{spread} |"
        )
    return "\n".join(lines)


def _quantized_stages(stages: dict[str, Any]):
    """(task title, stage name, quantization) of every quantized stage, by task."""
    for task, title, _, _ in TASKS:
        for name, results in stages.items():
            if name.startswith(f"{task}-") and results.get("quantization"):
                yield title, name, results["quantization"]


def variants_table(stages: dict[str, Any]) -> str:
    """Every variant of every quantized stage beside that stage's teacher, as measured in one process."""
    lines = [
        "| stage (split) | variant | metric | size (MB) | size / teacher | b1 ms | b32 ms | speed-up b1 | speed-up b32 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, name, quantization in _quantized_stages(stages):
        metric = quantization["main_metric"]
        rows = quantization["variants"]
        teacher = next((row for row in rows if row["name"] == "teacher"), None)
        for row in rows:
            latency = row.get("latency_ms") or {}
            base = (teacher or {}).get("latency_ms") or {}

            def speedup(key: str, base=base, latency=latency) -> str:
                return f"{base[key] / latency[key]:.2f}x" if base.get(key) and latency.get(key) else "–"

            size = row.get("size_bytes")
            ratio = f"{size / teacher['size_bytes']:.3f}" if teacher and size else "–"
            lines.append(
                f"| {name} ({quantization.get('eval_split', '?')}) | {row['name']} | "
                f"{_pct(row['metrics'].get(metric))} | {size / 1e6 if size else 0:.1f} | {ratio} | "
                f"{latency.get('batch_1', 0):.2f} | {latency.get('batch_32', 0):.1f} | {speedup('batch_1')} | "
                f"{speedup('batch_32')} |"
            )
    return "\n".join(lines)


def speed_table(speed: dict[str, Any] | None) -> str:
    """The speed stage: every int8 student beside its task's fp32 teacher, one process, interleaved rounds."""
    if not speed or not speed.get("latency_ms"):
        return "Not timed yet: the speed stage runs once stages have finished."
    settings = speed["settings"]
    lines = [
        f"Medians over {settings['rounds']} interleaved rounds (each round times every model in turn; "
        f"{settings['repeats']['b1']} passes at b1 and {settings['repeats']['b32']} at b32 per round), "
        f"{speed.get('threads', '?')} torch threads, seq {settings['seq_len']}.",
        "",
        "| task | model | b1 ms | b32 ms | speed-up b1 | speed-up b32 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for task, title, _, _ in TASKS:
        models = speed["latency_ms"].get(task) or {}
        teacher = models.get("teacher") or {}
        for name, latency in models.items():
            speedups = [
                f"{teacher[batch] / latency[batch]:.2f}x" if teacher.get(batch) else "–"
                for batch in ("b1", "b32")
            ]
            lines.append(
                f"| {title} | {name.removeprefix(f'{task}-')} | {latency['b1']:.2f} | {latency['b32']:.1f} | "
                f"{speedups[0]} | {speedups[1]} |"
            )
    return "\n".join(lines)


def stages_status(payload: dict[str, Any]) -> str:
    done = set(payload.get("finished_stages") or payload["stages"])
    planned = payload.get("planned_stages") or sorted(done)
    missing = [name for name in planned if name not in done]
    text = f"Finished stages: {', '.join(name for name in planned if name in done) or 'none'}."
    if missing:
        text += f" **Not run (yet): {', '.join(missing)}**; their figures are shown as –."
    return text


def render_report(payload: dict[str, Any], previous: str | None = None) -> str:
    preset = payload["preset"]
    environment = payload["environment"]
    parts = [
        "# Headline v2: MPNet-base teacher to int8 students, plain / KD / KD + transfer",
        "",
        f"Teacher `{payload['teacher']}` (12 x 768, fine-tuned here). Preset `{preset['name']}`: "
        f"{preset['train']} training examples per task (the first ones), teacher {preset['teacher_epochs']} "
        f"epochs (best on validation), students {preset['epochs']} epochs, batch {preset['batch']}; KD + transfer "
        f"adds up to {preset['transfer_ratio']}x as many unlabeled examples from the rest of the training split "
        "(teacher outputs cached once per task). Evaluation on the full CoNLL-2003 test split and SST-2 "
        f"validation split. CPU `{environment['cpu']}` with {', '.join(environment['cpu_flags'])}; "
        f"{environment['threads']} torch threads; git `{(environment.get('git_commit') or '?')[:10]}`; "
        + ", ".join(f"{name} {version}" for name, version in environment["versions"].items())
        + ".",
        "",
        stages_status(payload),
        "",
        "## Headline",
        "",
        headline_table(payload["headline"]),
        "",
        "## Teacher and students",
        "",
        teacher_table(payload["stages"]),
        "",
        "Retention: int8 student / fp32 teacher on the same split; speed-ups: fp32 teacher / int8 student, "
        "from the speed stage below (seq 128).",
        "",
        students_table(payload),
        "",
        "KD + transfer minus plain training of the best student (same initialisation and seed):",
        "",
        transfer_gain_table(payload.get("transfer_gains") or {}),
        "",
        "## Speed, side by side",
        "",
        speed_table(payload.get("speed")),
        "",
        "## Every variant of every stage (in-stage latencies: a few passes each, for reference)",
        "",
        variants_table(payload["stages"]),
        "",
        "![metric vs latency, marker size = size on disk](pareto.png)",
        "",
        ANALYSIS_MARKER,
    ]
    text = "\n".join(parts) + "\n"
    if previous and ANALYSIS_MARKER in previous:
        text += previous.split(ANALYSIS_MARKER, 1)[1].lstrip("\n")
    return text


def plot_headline(payload: dict[str, Any], path: Path) -> Path:
    """Metric vs batch-1 latency per task; marker area proportional to the size on disk."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    timed = (payload.get("speed") or {}).get("latency_ms") or {}
    figure = Figure(figsize=(11, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    for position, (task, title, _, _) in enumerate(TASKS, start=1):
        axes = figure.add_subplot(1, 2, position)
        rows, axis = [], ""
        for stage, results in payload["stages"].items():
            quantization = results.get("quantization") if stage.startswith(f"{task}-") else None
            if not quantization:
                continue
            metric = quantization["main_metric"]
            axis = f"{metric} ({quantization.get('eval_split', '')})"
            for row in quantization["variants"]:
                if row["name"] == "teacher" and any(r[0] == "teacher" for r in rows):
                    continue  # one teacher point per task
                if row["name"] == "fp32" or not (row.get("latency_ms") or {}).get("batch_1"):
                    continue
                label = "teacher" if row["name"] == "teacher" else stage.removeprefix(f"{task}-")
                # The side-by-side timing where the speed stage has one, else the stage's own.
                side_by_side = (timed.get(task) or {}).get("teacher" if label == "teacher" else stage) or {}
                rows.append(
                    (
                        label,
                        side_by_side.get("b1") or row["latency_ms"]["batch_1"],
                        100 * row["metrics"][metric],
                        row["size_bytes"] / 1e6,
                    )
                )
        if not rows:
            axes.text(0.5, 0.5, "not measured", ha="center", va="center", transform=axes.transAxes)
            continue
        axes.scatter(
            [r[1] for r in rows],
            [r[2] for r in rows],
            s=[max(r[3], 5) * 2 for r in rows],
            alpha=0.6,
            zorder=3,
        )
        for name, x, y, size in rows:
            axes.annotate(
                f"{name} ({size:.0f} MB)", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8
            )
        axes.set_xscale("log")
        axes.xaxis.set_minor_formatter(NullFormatter())  # log-scale minor labels overlap
        axes.xaxis.set_major_formatter(ScalarFormatter())
        axes.set_xlabel("latency, batch 1, seq 128 (ms, log scale)")
        axes.set_ylabel(axis)
        axes.set_title(title)
        axes.grid(alpha=0.3)
    figure.suptitle(
        "Metric vs batch-1 latency of the int8 students and the fp32 teacher; area = size on disk"
    )
    figure.tight_layout()
    figure.savefig(path)
    return path
