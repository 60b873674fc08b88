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

# (key, what it is, target test, target as words)
TARGETS = (
    ("ner_int8_retention", "int8 student / teacher, CoNLL-2003 test F1", lambda v: v >= 0.97, ">= 0.97"),
    (
        "sst2_int8_retention",
        "int8 student / teacher, SST-2 validation accuracy",
        lambda v: v >= 0.97,
        ">= 0.97",
    ),
    (
        "ner_kd_gain",
        "distilled - plain 3-layer student, CoNLL-2003 test F1 (points, mean over seeds)",
        lambda v: v >= 1.0,
        ">= 1.0",
    ),
    (
        "sst2_kd_gain",
        "distilled - plain 3-layer student, SST-2 accuracy (points, mean over seeds)",
        lambda v: v >= 1.0,
        ">= 1.0",
    ),
    ("speedup_b1", "fp32 teacher / int8 student latency, batch 1, seq 128", lambda v: v >= 10, ">= 10"),
    ("speedup_b32", "fp32 teacher / int8 student latency, batch 32, seq 128", lambda v: v >= 10, ">= 10"),
    ("ort_vs_torch_int8_speedup", "torch int8 / ONNX int8 student latency, batch 1", lambda v: v > 1, "> 1"),
    ("size_ratio", "int8 student / teacher bytes on disk", lambda v: v <= 0.20, "<= 0.20"),
    (
        "kd_live_step_ratio",
        "s/step, distillation with the live teacher / plain",
        lambda v: v <= 1.5,
        "<= 1.5",
    ),
    ("kd_cached_step_ratio", "s/step, distillation from the cache / plain", lambda v: v <= 1.1, "<= 1.1"),
)
TASKS = (("conll2003", "CoNLL-2003", "test", "f1"), ("sst2", "SST-2", "validation", "accuracy"))


def headline_table(headline: dict[str, Any]) -> str:
    lines = ["| ratio | measured | target | met |", "|---|---:|---:|:---:|"]
    for key, meaning, passes, target in TARGETS:
        value = headline.get(key)
        met = "–" if value is None else ("yes" if passes(value) else "**no**")
        shown = "–" if value is None else f"{value:g}"
        lines.append(f"| `{key}`: {meaning} | {shown} | {target} | {met} |")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def training_table(stages: dict[str, Any]) -> str:
    """Teacher, distilled and plain students per task, on the split the headline quotes."""
    lines = ["| task (split, metric) | teacher | 3-layer distilled | 3-layer plain | 2-layer distilled |"]
    lines.append("|---|---:|---:|---:|---:|")
    for task, title, split, metric in TASKS:
        l3, l2 = stages.get(f"{task}-L3", {}), stages.get(f"{task}-L2", {})

        def value(results: dict, role: str, split: str = split, metric: str = metric) -> float | None:
            return ((results.get(role) or {}).get("metrics") or {}).get(split, {}).get(metric)

        lines.append(
            f"| {title} ({split}, {metric}) | {_pct(value(l3, 'teacher'))} | {_pct(value(l3, 'student'))} | "
            f"{_pct(value(l3, 'plain_student'))} | {_pct(value(l2, 'student'))} |"
        )
    return "\n".join(lines)


def kd_seed_table(kd_gain_seeds: dict[str, Any]) -> str:
    """Distilled minus plain 3-layer student per seed; the headline's KD gain is the mean."""
    lines = ["| task | seeds | gain per seed (points) | mean ± sd |", "|---|---|---|---:|"]
    for task, title, _, _ in TASKS:
        entry = kd_gain_seeds.get(task)
        if not entry or not entry["gains"]:
            continue
        spread = f" ± {entry['sd']:.2f}" if entry.get("sd") is not None else " (one seed)"
        lines.append(
            f"| {title} | {', '.join(map(str, entry['seeds']))} | "
            f"{', '.join(f'{gain:+.2f}' for gain in entry['gains'])} | {entry['mean']:+.2f}{spread} |"
        )
    return "\n".join(lines)


def variants_table(stages: dict[str, Any]) -> str:
    """Every quantized variant of the 3-layer student beside the teacher, as measured in one run."""
    lines = [
        "| task | variant | metric | size (MB) | size / teacher | b1 ms | b32 ms | speed-up b1 | speed-up b32 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task, title, _, _ in TASKS:
        quantization = (stages.get(f"{task}-L3") or {}).get("quantization")
        if not quantization:
            continue
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
                f"| {title} ({quantization.get('eval_split', '?')}) | {row['name']} | "
                f"{_pct(row['metrics'].get(metric))} | {size / 1e6 if size else 0:.1f} | {ratio} | "
                f"{latency.get('batch_1', 0):.2f} | {latency.get('batch_32', 0):.1f} | {speedup('batch_1')} | "
                f"{speedup('batch_32')} |"
            )
    return "\n".join(lines)


def step_cost_table(step_cost: dict[str, Any]) -> str:
    lines = ["| run | s/step (median per round) | vs plain (mean ± sd over rounds) |", "|---|---|---:|"]
    ratios = step_cost.get("ratio_vs_plain", {})
    for name, figures in (step_cost.get("seconds_per_step") or {}).items():
        ratio = ratios.get(f"{name}_vs_plain", {})
        shown = f"{ratio['mean']:.3f}x ± {ratio.get('sd', 0):.3f}" if ratio else "1x"
        rounds = ", ".join(f"{value:.3f}" for value in figures.get("per_round_s", []))
        lines.append(f"| {name} | {rounds} | {shown} |")
    return "\n".join(lines)


def speed_tables(speed: dict[str, Any]) -> str:
    """Latency per thread count and input shape, then the profilers' breakdowns."""
    if not speed:
        return "(not measured)"
    latency = speed["latency"]
    columns = list(next(iter(latency.values())))
    lines = [
        "Median ms per forward pass, every model timed in turn each round. Shapes: "
        + ", ".join(f"`{name}` = batch {b} x {s} tokens" for name, (b, s) in speed["shapes"].items())
        + f" (real lengths of {speed['lengths']['examples']} examples: median {speed['lengths']['median']}, "
        f"p90 {speed['lengths']['p90']}).",
        "",
        "| threads / shape | " + " | ".join(columns) + " | teacher / onnx-int8 |",
        "|---|" + "---:|" * (len(columns) + 1),
    ]
    for key, row in latency.items():
        teacher, int8 = row.get(columns[0], {}).get("median_ms"), row.get("onnx-int8", {}).get("median_ms")
        ratio = f"{teacher / int8:.2f}x" if teacher and int8 else "–"
        lines.append(
            f"| {key} | " + " | ".join(f"{row[c]['median_ms']:.2f}" for c in columns) + f" | {ratio} |"
        )
    for title, profiles in (
        ("ONNX Runtime profiler: share of operator time (%)", speed.get("ort_profile")),
        ("torch.profiler: share of self CPU time (%)", speed.get("torch_profile")),
        ("py-spy: share of samples (%) per innermost Python frame", speed.get("pyspy_profile")),
    ):
        if not profiles:
            continue
        lines += ["", f"{title}, top entries", ""]
        lines += ["| model / shape | top operators |", "|---|---|"]
        for key, shares in profiles.items():
            top = ", ".join(
                f"{op} {share:g}" if isinstance(share, int | float) else str(share)
                for op, share in list(shares.items())[:7]
            )
            lines.append(f"| {key} | {top} |")
    if speed.get("size_bytes"):
        lines += ["", "| variant | bytes on disk |", "|---|---:|"]
        lines += [f"| {name} | {size:,} |" for name, size in speed["size_bytes"].items()]
    return "\n".join(lines)


def render_report(payload: dict[str, Any], previous: str | None = None) -> str:
    preset = payload["preset"]
    environment = payload["environment"]
    parts = [
        "# Headline: MPNet-base teacher to an int8 3-layer student",
        "",
        f"Teacher `{payload['teacher']}` (12 x 768, fine-tuned here). Preset `{preset['name']}`: "
        f"{preset['train']} training examples per task (subsampled, seed 42), teacher {preset['teacher_epochs']} "
        f"epochs (best on validation), students {preset['epochs']} epochs, batch {preset['batch']}; "
        "evaluation on the full CoNLL-2003 test split and SST-2 validation split. "
        f"CPU `{environment['cpu']}` with {', '.join(environment['cpu_flags'])}; {environment['threads']} torch "
        f"threads; git `{environment['git_commit'][:10]}`; "
        + ", ".join(f"{name} {version}" for name, version in environment["versions"].items())
        + ".",
        "",
        "## Headline",
        "",
        headline_table(payload["headline"]),
        "",
        "## Teacher and students",
        "",
        training_table(payload["stages"]),
        "",
        "Distilled minus plain 3-layer student (same initialisation, steps and data; the seed varies):",
        "",
        kd_seed_table(payload.get("kd_gain_seeds") or {}),
        "",
        "## Every variant, measured side by side in one run (seq 128)",
        "",
        variants_table(payload["stages"]),
        "",
        "![metric vs latency, marker size = size on disk](pareto.png)",
        "",
        "## Training cost (interleaved rounds)",
        "",
        step_cost_table(payload["step_cost"] or {}),
        "",
        "## Where the speed is (benchmarks/speed.py on the CoNLL-2003 stage)",
        "",
        speed_tables(payload.get("speed") or {}),
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

    figure = Figure(figsize=(11, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    for position, (task, title, _, _) in enumerate(TASKS, start=1):
        axes = figure.add_subplot(1, 2, position)
        quantization = (payload["stages"].get(f"{task}-L3") or {}).get("quantization")
        if not quantization:
            axes.text(0.5, 0.5, "not measured", ha="center", va="center", transform=axes.transAxes)
            continue
        metric = quantization["main_metric"]
        rows = [
            (row["name"], row["latency_ms"]["batch_1"], 100 * row["metrics"][metric], row["size_bytes"] / 1e6)
            for row in quantization["variants"]
            if (row.get("latency_ms") or {}).get("batch_1") and row["metrics"].get(metric) is not None
        ]
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
        axes.set_ylabel(f"{metric} ({quantization.get('eval_split', '')})")
        axes.set_title(title)
        axes.grid(alpha=0.3)
    figure.suptitle("Metric vs latency; marker area = size on disk")
    figure.tight_layout()
    figure.savefig(path)
    return path
