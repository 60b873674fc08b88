"""Quantize a student with several methods and measure every variant the same way, in one call.

This is what the CLI's `quantize` command and the recipes' `--quantize` option run:
fp32 student (and optionally the teacher) -> each method -> load -> evaluate with the training
metric code -> compare logits with the student (verification.json) -> size, memory, latency ->
results.json + REPORT.md + pareto.png. With `max_metric_drop` it raises `MetricDropError` (after the
reports are written) when a variant loses more metric points than allowed, so CI can gate on it.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from hfkdq.evaluation import EvaluationResult, evaluate, measure_costs
from hfkdq.quantization import get_method, inspect_model_dir, load_variant, quantize, require_backend
from hfkdq.quantization.artifacts import check_output_dir
from hfkdq.quantization.errors import CalibrationDataError, MetricDropError
from hfkdq.quantization.verify import compare_predictions, write_verification
from hfkdq.report import deltas, markdown_table, write_report

logger = logging.getLogger(__name__)

MAIN_METRIC_PREFERENCE = ("f1", "combined_score", "matthews_correlation", "pearson", "accuracy")
STATIC_METHODS = ("onnx-int8-static",)


def parse_methods(methods: str | Iterable[str]) -> list[str]:
    """'onnx-int8,bnb-8bit' or a list -> validated, de-duplicated names (unknown names fail here)."""
    names = (
        [name.strip() for name in methods.split(",")]
        if isinstance(methods, str)
        else [str(m) for m in methods]
    )
    names = list(dict.fromkeys(name for name in names if name))
    if not names:
        raise ValueError("No quantization method given.")
    for name in names:
        get_method(name)
    return names


def choose_main_metric(metrics: Mapping[str, float], requested: str | None = None) -> str:
    """The metric that ranks variants: `requested`, else the first of f1/combined/mcc/pearson/accuracy."""
    if requested is not None:
        if requested not in metrics:
            raise ValueError(f"Metric {requested!r} is not among the computed metrics {sorted(metrics)}.")
        return requested
    for name in MAIN_METRIC_PREFERENCE:
        if name in metrics:
            return name
    return sorted(metrics)[0]


def _row(
    name: str, role: str, method: str, path: Path, result: EvaluationResult, costs: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "role": role,
        "method": method,
        "path": str(path),
        "metrics": result.metrics,
        "eval_seconds": result.seconds,
        **costs,
        "verification": None,
    }


def _release(model: Any) -> None:
    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _preflight(
    student: Any,
    names: list[str],
    output_dir: Path,
    calibration_dataset: Any,
    method_options: Mapping[str, Mapping[str, Any]],
    overwrite: bool,
) -> None:
    """Every check that can fail without quantizing anything, so a bad run fails in seconds, not after hours."""
    for name in names:
        method = get_method(name)
        require_backend(method)
        check_output_dir(output_dir / name, overwrite)
        if method.module == "onnx":
            from hfkdq.quantization.onnx import check_exportable

            check_exportable(student)
        if (
            name in STATIC_METHODS
            and method_options.get(name, {}).get("calibration_dataset", calibration_dataset) is None
        ):
            raise CalibrationDataError(
                f"{name} calibrates activation ranges on training samples, but no calibration data was given: "
                "pass calibration_dataset= (tokenized training examples), or on the CLI --train_file / --data_dir."
            )


def quantize_and_evaluate(
    model_dir: str | Path,
    methods: str | Iterable[str],
    output_dir: str | Path,
    eval_dataset: Any,
    data_collator: Callable,
    compute_metrics: Callable,
    calibration_dataset: Any = None,
    max_metric_drop: float | None = None,
    teacher_dir: str | Path | None = None,
    *,
    main_metric: str | None = None,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = 32,
    latency_batch_sizes: Iterable[int] = (1, 32),
    latency_seq_len: int = 128,
    latency_repeats: int = 20,
    latency_warmup: int = 3,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write `output_dir/<method>/` per method plus results.json, REPORT.md, pareto.png; return the results.

    `eval_dataset` is tokenized (input_ids, attention_mask, (token_type_ids), labels) and padded per
    batch by `data_collator`; `compute_metrics(EvalPrediction)` is the training metric code.
    `calibration_dataset` (tokenized training examples) feeds static quantization.
    `max_metric_drop` is in metric points (0.01 of a fraction metric); exceeding it raises
    `MetricDropError` after everything is written. `method_options` maps a method name to extra
    options for its backend (e.g. {"onnx-int8": {"per_channel": False}}).
    """
    names = parse_methods(methods)
    student = inspect_model_dir(model_dir)
    output_dir = Path(output_dir)
    method_options = method_options or {}
    _preflight(student, names, output_dir, calibration_dataset, method_options, overwrite)
    latency_batch_sizes = tuple(latency_batch_sizes)

    def measure(model: Any, directory: Path) -> dict[str, Any]:
        return measure_costs(
            model, directory, latency_batch_sizes, latency_seq_len, latency_repeats, latency_warmup
        )

    logger.info("Evaluating the fp32 student %s", student.path)
    reference_model = load_variant(student.path)
    reference = evaluate(reference_model, eval_dataset, data_collator, compute_metrics, batch_size)
    rows = [_row("fp32", "student", "fp32", student.path, reference, measure(reference_model, student.path))]
    device = str(next(reference_model.parameters()).device)
    _release(reference_model)
    metric = choose_main_metric(reference.metrics, main_metric)

    if teacher_dir is not None:
        logger.info("Evaluating the teacher %s", teacher_dir)
        teacher = load_variant(teacher_dir)
        result = evaluate(teacher, eval_dataset, data_collator, compute_metrics, batch_size)
        rows.append(
            _row("teacher", "teacher", "fp32", Path(teacher_dir), result, measure(teacher, Path(teacher_dir)))
        )
        _release(teacher)

    for name in names:
        options = dict(method_options.get(name, {}))
        if name in STATIC_METHODS:
            options.setdefault("calibration_dataset", calibration_dataset)
        logger.info("Quantizing with %s", name)
        variant_dir = quantize(student.path, name, output_dir / name, overwrite=overwrite, **options)
        variant = load_variant(variant_dir)
        result = evaluate(variant, eval_dataset, data_collator, compute_metrics, batch_size)
        row = _row(name, "variant", name, variant_dir, result, measure(variant, variant_dir))
        row["verification"] = compare_predictions(reference.predictions, result.predictions)
        write_verification(variant_dir, row["verification"], reference=student.path)
        rows.append(row)
        _release(variant)
        logger.info("%s: %s=%.4f", name, metric, result.metrics.get(metric, float("nan")))

    for row in rows:
        row["deltas"] = deltas(row, rows[0], metric)
    violations = []
    if max_metric_drop is not None:
        for row in rows:
            drop = -(row["deltas"]["metric_points"] or 0.0)
            if row["role"] == "variant" and drop > max_metric_drop:
                violations.append({"variant": row["name"], "drop_points": drop, "allowed": max_metric_drop})

    results = {
        "model_dir": str(student.path),
        "output_dir": str(output_dir),
        "head": student.head,
        "main_metric": metric,
        "reference": "fp32",
        "eval_examples": len(eval_dataset),
        "latency": {
            "seq_len": latency_seq_len,
            "batch_sizes": list(latency_batch_sizes),
            "repeats": latency_repeats,
            "warmup": latency_warmup,
            "torch_threads": torch.get_num_threads(),
            "device": device,
        },
        "max_metric_drop": max_metric_drop,
        "violations": violations,
        "variants": rows,
    }
    results["files"] = {key: str(path) for key, path in write_report(results, output_dir).items()}
    if violations:
        lines = [
            f"variant {item['variant']!r} lost {item['drop_points']:.2f} {metric} points "
            f"(allowed: {item['allowed']:.2f})"
            for item in violations
        ]
        raise MetricDropError(
            "METRIC DROP ABOVE THE ALLOWED MAXIMUM vs the fp32 student:\n  " + "\n  ".join(lines), results
        )
    return results


def summary_table(results: Mapping[str, Any]) -> str:
    """The markdown table of `results` (what the CLI prints)."""
    return markdown_table(dict(results))
