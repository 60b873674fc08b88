"""Turn measured variants into what a reader compares: a markdown table, JSON, and a Pareto plot;
and a distillation run's teacher-vs-student summary (`format_summary`).

Input is the `results` dict of `hfkdq.quantization.workflow.quantize_and_evaluate` (JSON-safe):
``{"main_metric": "f1", "reference": "fp32", "variants": [{"name", "device", "metrics", "size_bytes",
"param_memory_bytes", "latency_ms": {"batch_1", "batch_32"}, "verification", ...}, ...]}``.
Deltas are against the fp32 student (a `reference` row), since that is the model being replaced, and
against the one measured on the row's own device: a CUDA int8 model timed against a CPU fp32 model
would report the GPU's speed-up, not the method's. There is one reference row per device used;
the first is the primary one (rows without a same-device reference, e.g. old results, fall back to it).
Metrics are fractions (0.873); differences are reported in points (x100).

The plot draws on an Agg canvas directly, so saving a PNG never changes the caller's matplotlib backend.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hfkdq.layout import PLOT_FILE, REPORT_FILE, RESULTS_FILE
from hfkdq.outputs import write_json_atomically

MB = 1024 * 1024


def metric_value(variant: dict[str, Any], metric: str) -> float | None:
    value = variant.get("metrics", {}).get(metric)
    return None if value is None else float(value)


def deltas(variant: dict[str, Any], reference: dict[str, Any], metric: str) -> dict[str, float | None]:
    """Metric change in points, size/memory ratios and speed-ups of `variant` relative to `reference`."""

    def ratio(numerator: float | None, denominator: float | None) -> float | None:
        if numerator is None or denominator in (None, 0):
            return None
        return float(numerator) / float(denominator)

    value, base = metric_value(variant, metric), metric_value(reference, metric)
    result: dict[str, float | None] = {
        "metric_points": None if value is None or base is None else 100.0 * (value - base),
        "size_ratio": ratio(variant.get("size_bytes"), reference.get("size_bytes")),
        "memory_ratio": ratio(variant.get("param_memory_bytes"), reference.get("param_memory_bytes")),
    }
    for key, ms in (reference.get("latency_ms") or {}).items():
        result[f"speedup_{key}"] = ratio(ms, (variant.get("latency_ms") or {}).get(key))
    return result


def reference_for(
    variant: dict[str, Any], rows: Sequence[dict[str, Any]], reference: str = "fp32"
) -> dict[str, Any] | None:
    """The `reference` row measured on `variant`'s device; else the first (primary) one; else None.

    Rows without a "device" (results written before devices were recorded) all match each other.
    Only a reference of the row's own "group" counts: `merge_results` groups rows by the student they
    were quantized from, and a variant of one student measured against another's fp32 means nothing.
    """
    references = [
        row for row in rows if row["name"] == reference and row.get("group") == variant.get("group")
    ]
    same_device = (row for row in references if row.get("device") == variant.get("device"))
    return next(same_device, references[0] if references else None)


def display_name(variant: dict[str, Any]) -> str:
    """'onnx-int8', or 'student-a/onnx-int8' for a row of a merged report (see `merge_results`)."""
    group = variant.get("group")
    return f"{group}/{variant['name']}" if group else variant["name"]


def _fmt(value: float | None, digits: int = 2, suffix: str = "", signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.{digits}f}{suffix}" if signed else f"{value:.{digits}f}{suffix}"


def _mb(value: int | None) -> float | None:
    return None if value is None else value / MB


def markdown_table(results: dict[str, Any]) -> str:
    """One row per variant: metric, delta (points), size, weight memory, device, latency b1/b32, agreement.

    Deltas and speed-ups are against the reference on the same device (`reference_for`), and the
    Device column says which one that is.
    """
    metric = results["main_metric"]
    header = [
        "Variant",
        metric,
        f"Δ {metric} (pts)",
        "Size MB",
        "Size ×",
        "Param mem MB",
        "Device",
        "Latency b1 ms",
        "Latency b32 ms",
        "Speed-up b1",
        "Speed-up b32",
        "Agreement",
        "Max |Δlogit|",
    ]
    align = ["---" if column in ("Variant", "Device") else "---:" for column in header]  # text left
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for variant in results["variants"]:
        reference = reference_for(variant, results["variants"], results.get("reference", "fp32"))
        delta = deltas(variant, reference, metric) if reference else {}
        latency = variant.get("latency_ms") or {}
        verification = variant.get("verification") or {}
        agreement = verification.get("prediction_agreement")
        row = [
            display_name(variant)
            + (" (reference)" if reference is variant else "")
            + (" (earlier run)" if variant.get("earlier_run") else ""),
            _fmt(metric_value(variant, metric), 4),
            _fmt(delta.get("metric_points"), 2, signed=True) if reference is not variant else "–",
            _fmt(_mb(variant.get("size_bytes")), 2),
            _fmt(delta.get("size_ratio"), 2, "×"),
            _fmt(_mb(variant.get("param_memory_bytes")), 2),
            variant.get("device") or "–",
            _fmt(latency.get("batch_1"), 2),
            _fmt(latency.get("batch_32"), 1),
            _fmt(delta.get("speedup_batch_1"), 2, "×"),
            _fmt(delta.get("speedup_batch_32"), 2, "×"),
            _fmt(None if agreement is None else 100.0 * agreement, 2, "%"),
            _fmt(verification.get("max_abs_logit_diff"), 4),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def render_markdown(results: dict[str, Any]) -> str:
    """The full REPORT.md: table, how it was measured, and any metric-drop violations."""
    latency = results.get("latency", {})
    parts = [
        "# Quantization report",
        "",
        f"Model: `{results.get('model_dir', '?')}` · task metric: `{results['main_metric']}` "
        f"on {results.get('eval_examples', '?')} held-out examples.",
        "",
        markdown_table(results),
        "",
        "Size: bytes of weight files on disk. Param mem: bytes of weights in memory (ONNX: model file). "
        f"Latency: median of {latency.get('repeats', '?')} runs after {latency.get('warmup', '?')} warm-up, "
        f"sequence length {latency.get('seq_len', '?')}, on the row's Device "
        f"({latency.get('torch_threads', '?')} torch threads on CPU). Δ, size ×, speed-up and agreement "
        "are against the fp32 student on the same device. Agreement: argmax agreement "
        "(token classification: real tokens only). Δ in metric points (×100).",
    ]
    if any(variant.get("earlier_run") for variant in results["variants"]):
        parts += [
            "",
            "(earlier run): a variant quantized by an earlier `hfkdq quantize` of the same student into this "
            "directory, kept as it was measured then; its latency was timed in that run.",
        ]
    if results.get("merged_from"):
        parts += ["", f"Merged from {len(results['merged_from'])} results files:", ""]
        parts += [f"- `{source}`" for source in results["merged_from"]]
        parts += [f"- Note: {note}" for note in results.get("merge_notes") or []]
    violations = results.get("violations") or []
    if violations:
        parts += ["", f"**FAILED: metric drop above {results.get('max_metric_drop')} points**", ""]
        parts += [
            f"- `{item['variant']}` lost {item['drop_points']:.2f} points"
            if item.get("drop_points") is not None
            else f"- `{item['variant']}`: {item.get('reason') or 'no measured drop'}"
            for item in violations
        ]
    return "\n".join(parts) + "\n"


def _pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats on both axes (lower x, higher y), sorted by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for index in order:
        if points[index][1] > best:
            front.append(index)
            best = points[index][1]
    return front


def plot_pareto(results: dict[str, Any], path: str | Path) -> Path:
    """Two panels, latency (b1) and size vs the task metric, each with its Pareto front drawn.

    Points are labelled with their device when the results span several, since a latency front then
    mixes devices (a reader with only a CPU should look at the CPU points).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metric = results["main_metric"]
    several_devices = len({v.get("device") for v in results["variants"]}) > 1

    def label_of(variant: dict[str, Any]) -> str:
        """'fp32' twice would be ambiguous when references run on several devices."""
        name = display_name(variant)
        return f"{name} ({variant.get('device')})" if several_devices else name

    figure = Figure(figsize=(11, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    panels = (
        ("Latency, batch 1 (ms)", lambda v: (v.get("latency_ms") or {}).get("batch_1")),
        ("Weights on disk (MB)", lambda v: _mb(v.get("size_bytes"))),
    )
    for position, (label, x_of) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, 2, position)
        rows = [
            (label_of(v), x_of(v), metric_value(v, metric))
            for v in results["variants"]
            if x_of(v) is not None and metric_value(v, metric) is not None
        ]
        if not rows:
            axes.text(0.5, 0.5, "not measured", ha="center", va="center", transform=axes.transAxes)
        else:
            points = [(x, y) for _, x, y in rows]
            axes.scatter([x for x, _ in points], [y for _, y in points], zorder=3)
            for name, x, y in rows:
                axes.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
            front = _pareto_front(points)
            axes.plot(
                [points[i][0] for i in front],
                [points[i][1] for i in front],
                "--o",
                color="tab:red",
                markerfacecolor="none",
                markersize=11,
                zorder=2,
                label="Pareto front",
            )
            axes.legend(loc="lower right", fontsize=8)
        axes.set_xlabel(label)
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
    figure.suptitle(f"{metric} vs cost")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    return path


def write_report(results: dict[str, Any], output_dir: str | Path) -> dict[str, Path]:
    """Write results.json, REPORT.md and pareto.png into `output_dir`; return their paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path = write_json_atomically(output_dir / RESULTS_FILE, results)  # never a truncated results.json
    report_path = output_dir / REPORT_FILE
    report_path.write_text(render_markdown(results))
    return {"json": json_path, "markdown": report_path, "plot": plot_pareto(results, output_dir / PLOT_FILE)}


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a quantization `results.json`, failing with the file's name when it is not one.

    Checked here, not deep inside the rendering, so that a distillation run's results.json or a
    truncated file is named as the problem instead of surfacing as a KeyError in a table.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results file.")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})."
        ) from error
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not a JSON text file ({error}).") from error
    expected = (
        f"{path} is not a quantization results file (the results.json of hfkdq quantize): it needs "
        "'main_metric' and a non-empty 'variants' list of rows with 'name' and 'metrics'."
    )
    if not isinstance(results, dict) or "main_metric" not in results or not results.get("variants"):
        if isinstance(results, dict) and {"teacher", "student"} <= set(results):
            expected += (
                " This looks like a distillation run's results.json; its quantization results are in "
                "<output_dir>/quantized/results.json (recipe --quantize, or hfkdq quantize)."
            )
        raise ValueError(expected)
    rows = results["variants"]
    if not isinstance(rows, list) or not all(
        isinstance(row, dict) and "name" in row and isinstance(row.get("metrics"), dict) for row in rows
    ):
        raise ValueError(expected)
    return results


def _group_labels(model_dirs: Sequence[str]) -> dict[str, str]:
    """A short, unique label per student directory: its name, else its last two parts, else a number."""
    for parts in (1, 2):
        labels = {
            model_dir: "/".join(Path(model_dir).parts[-parts:]) or model_dir for model_dir in model_dirs
        }
        if len(set(labels.values())) == len(labels):
            return labels
    return {model_dir: f"{index + 1}" for index, model_dir in enumerate(model_dirs)}


def merge_results(results_list: Sequence[dict[str, Any]], sources: Sequence[str] = ()) -> dict[str, Any]:
    """One `results` dict from several quantization runs, ready for `write_report`.

    A single input is returned unchanged, so re-rendering a report is idempotent. Several runs of one
    student (e.g. ONNX measured in one environment, bitsandbytes on a GPU in another) pool their rows;
    a (name, device) row measured twice is kept from the first file. Runs of different students keep
    their rows apart in groups (`display_name` shows "student/variant"), each measured against its own
    fp32 row. All runs must rank by the same metric. What a reader should know about the merge
    (dropped duplicates, different evaluation sizes or latency settings) goes into `merge_notes`.
    """
    if not results_list:
        raise ValueError("No results to merge.")
    sources = list(sources) or [f"results #{index + 1}" for index in range(len(results_list))]
    if len(results_list) == 1:
        return results_list[0]
    metrics = {results["main_metric"] for results in results_list}
    if len(metrics) > 1:
        described = ", ".join(f"{r['main_metric']} ({s})" for r, s in zip(results_list, sources, strict=True))
        raise ValueError(
            f"The results rank by different metrics: {described}. Merge reports of one task only."
        )
    model_dirs = list(dict.fromkeys(str(results.get("model_dir", "?")) for results in results_list))
    labels = _group_labels(model_dirs) if len(model_dirs) > 1 else {}
    rows: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    notes: list[str] = []
    violations: list[dict[str, Any]] = []
    for results, source in zip(results_list, sources, strict=True):
        group = labels.get(str(results.get("model_dir", "?")))
        for row in results["variants"]:
            key = (group, row["name"], row.get("device"))
            if key in seen:
                notes.append(
                    f"{display_name({**row, 'group': group})} on {row.get('device')} from {source} "
                    "was measured in an earlier file too; the earlier row is kept."
                )
                continue
            seen.add(key)
            rows.append({**row, "group": group} if group else dict(row))
        for item in results.get("violations") or []:
            name = f"{group}/{item['variant']}" if group else item["variant"]
            violations.append({**item, "variant": name})
    sizes = {str(results.get("eval_examples", "?")) for results in results_list}
    if len(sizes) > 1:
        notes.append(f"The runs evaluated different numbers of examples ({', '.join(sorted(sizes))}).")
    settings = {json.dumps(results.get("latency", {}), sort_keys=True) for results in results_list}
    if len(settings) > 1:
        notes.append("The runs timed latency with different settings; the caption shows the first run's.")
    metric = metrics.pop()
    for row in rows:
        reference = reference_for(row, rows)
        row["deltas"] = deltas(row, reference, metric) if reference else {}
    drops = {results.get("max_metric_drop") for results in results_list}
    first = results_list[0]
    return {
        "model_dir": ", ".join(model_dirs),
        "head": first.get("head"),
        "main_metric": metric,
        "reference": "fp32",
        "eval_examples": " / ".join(sorted(sizes)) if len(sizes) > 1 else first.get("eval_examples"),
        "latency": first.get("latency", {}),
        "max_metric_drop": drops.pop() if len(drops) == 1 else None,
        "violations": violations,
        "variants": rows,
        "merged_from": [str(source) for source in sources],
        "merge_notes": notes,
    }


def format_summary(results: dict[str, Any], main_metric: str) -> str:
    """Teacher vs student (and the plain baseline, when trained) on every evaluated split, one line each."""
    teacher, student = results["teacher"], results["student"]
    plain = results.get("plain_student")
    width = max(16, len(main_metric) + 10)
    header = f"{'split':<24}{'teacher ' + main_metric:>{width}}"
    if plain:
        header += f"{'plain ' + main_metric:>{width}}"
    header += f"{'distilled ' + main_metric if plain else 'student ' + main_metric:>{width}}"
    lines = [
        f"teacher: {teacher['num_layers']} layers, {teacher['num_parameters'] / 1e6:.1f}M params | "
        f"student: {student['num_layers']} layers, {student['num_parameters'] / 1e6:.1f}M params",
        header,
    ]
    for split, metrics in teacher["metrics"].items():
        line = f"{split:<24}{metrics[main_metric]:>{width}.4f}"
        if plain:
            line += f"{plain['metrics'][split][main_metric]:>{width}.4f}"
        lines.append(line + f"{student['metrics'][split][main_metric]:>{width}.4f}")
    if teacher.get("still_improving"):
        lines.append("teacher: still improving at its last epoch (more --teacher_num_train_epochs may help)")
    if (teacher.get("chance") or {}).get("at_chance"):
        chance = teacher["chance"]
        lines.append(
            f"teacher: AT CHANCE LEVEL on {chance['split']} {chance['metric']} "
            f"({chance['chance_baseline']} scores {chance['chance_level']:.4f})"
        )
    lines.append(f"wall time: {results['wall_time_s']:.0f} s")
    return "\n".join(lines)
