"""Quantize a student with several methods and measure every variant the same way, in one call.

This is what the CLI's `quantize` command and the recipes' `--quantize` option run:
fp32 student on every device a variant runs on (and optionally the teacher) -> each method -> load
-> evaluate with the training metric code -> compare logits with the student (verification.json) ->
size, memory, latency -> results.json + REPORT.md + pareto.png.

Each variant is compared with the fp32 student measured on its own device (bitsandbytes on CUDA
against fp32 on CUDA, ONNX Runtime against fp32 on CPU): comparing across devices would credit the
method with the GPU's speed-up. Every row records its `device`.

With `max_metric_drop` it raises `MetricDropError` (after the reports are written) when a variant
fails `hfkdq.quality_gate`, the rule `hfkdq push` applies too: it lost more metric points than
allowed, or its drop is not a finite number. CI can gate on it.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from hfkdq.environment import capture_environment
from hfkdq.evaluation import EvaluationResult, evaluate, measure_costs, runtime_device
from hfkdq.layout import RESULTS_FILE
from hfkdq.outputs import check_output_dir, remove_stale_staging
from hfkdq.quality_gate import gate
from hfkdq.quantization.api import load_variant, quantize
from hfkdq.quantization.artifacts import SavedModel, inspect_model_dir, read_metadata
from hfkdq.quantization.errors import CalibrationDataError, MetricDropError
from hfkdq.quantization.registry import check_options, get_method, method_device, parse_methods
from hfkdq.quantization.verify import compare_predictions, write_verification
from hfkdq.report import deltas, markdown_table, reference_for, write_report
from hfkdq.run_dir import run_lock
from hfkdq.validation import check_max_metric_drop

logger = logging.getLogger(__name__)

MAIN_METRIC_PREFERENCE = ("f1", "combined_score", "matthews_correlation", "pearson", "accuracy")


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


def reference_devices(variant_devices: Iterable[str]) -> list[str]:
    """The devices the fp32 reference must be measured on: each one a variant runs on, CPU first.

    The first is the primary reference (`rows[0]`, the teacher's device). CPU comes first when any
    variant needs it, as before devices were tracked; without variants the reference runs on CPU.
    """
    devices = list(dict.fromkeys(variant_devices)) or ["cpu"]
    return sorted(devices, key=lambda device: device != "cpu")


def _row(
    name: str,
    role: str,
    method: str,
    path: Path,
    device: str,
    result: EvaluationResult,
    costs: dict[str, Any],
) -> dict[str, Any]:
    return {
        "name": name,
        "role": role,
        "method": method,
        "path": str(path),
        "device": device,
        "metrics": result.metrics,
        "eval_seconds": result.seconds,
        **costs,
        "verification": None,
    }


def _placed_on(model: Any, requested: str, what: str) -> str:
    """The device `model` really runs on; a warning if that is not the `requested` one."""
    device = runtime_device(model)
    if device != requested:
        logger.warning("%s was meant to run on %s but runs on %s (reported as such)", what, requested, device)
    return device


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
    """Every check that can fail without quantizing anything, so a bad run fails in seconds, not after hours.

    (`parse_methods` has already checked that each method's backend is installed.)
    """
    for name in names:
        method = get_method(name)
        check_options(method, method_options.get(name, {}))
        check_output_dir(output_dir / name, overwrite)
        if method.backend.check:
            getattr(method.backend.load_module(), method.backend.check)(student)
        if (
            method.needs_calibration_data
            and method_options.get(name, {}).get("calibration_dataset", calibration_dataset) is None
        ):
            raise CalibrationDataError(
                f"{name} calibrates activation ranges on training samples, but no calibration data was given: "
                "pass calibration_dataset= (tokenized training examples), or on the CLI --train_file / --data_dir."
            )


def quantize_and_evaluate(
    model_dir: str | Path | SavedModel,
    methods: str | Iterable[str],
    output_dir: str | Path,
    eval_dataset: Any,
    data_collator: Callable,
    compute_metrics: Callable,
    calibration_dataset: Any = None,
    max_metric_drop: float | None = None,
    teacher_dir: str | Path | SavedModel | None = None,
    *,
    main_metric: str | None = None,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = 32,
    latency_batch_sizes: Iterable[int] = (1, 32),
    latency_seq_len: int = 128,
    latency_repeats: int = 20,
    latency_warmup: int = 3,
    overwrite: bool = False,
    mixed_precision: bool = False,
) -> dict[str, Any]:
    """Write `output_dir/<method>/` per method plus results.json, REPORT.md, pareto.png; return the results.

    The fp32 student is evaluated and timed on every device a variant runs on (`method_device`), one
    "fp32" row per device, the primary (CPU when used) first; the teacher runs on the primary device.
    All of a row's deltas (metric points, size/memory ratios, speed-ups), its verification and the
    `max_metric_drop` gate are against the fp32 row on the row's own device (`reference_for`): metrics
    barely depend on the device, but one rule keeps device noise out of every comparison.
    `eval_dataset` is tokenized (input_ids, attention_mask, (token_type_ids), labels) and padded per
    batch by `data_collator`; `compute_metrics(EvalPrediction)` is the training metric code.
    `calibration_dataset` (tokenized training examples) feeds static quantization.
    `max_metric_drop` is in metric points (0.01 of a fraction metric); exceeding it raises
    `MetricDropError` after everything is written. `method_options` maps a method name to extra
    options for its backend (e.g. {"onnx-int8": {"per_channel": False}}).
    With `mixed_precision`, an onnx-int8 variant that misses `max_metric_drop` falls back to the
    mixed-precision search (`hfkdq.quantization.mixed_precision`): the `onnx-int8-mixed` variant keeps
    the most sensitive nodes in fp32 until the drop fits, and replaces onnx-int8 at the gate. A budget
    even fp32 cannot meet is recorded and the gate still fails.
    """
    # One quantize run per output directory; scratch left by a killed run is removed under the lock.
    with run_lock(output_dir):
        for stale in remove_stale_staging(output_dir):
            logger.warning("Removed %s, left by an interrupted run.", stale)
        names = parse_methods(methods)
        max_metric_drop = check_max_metric_drop(max_metric_drop)
        if mixed_precision and (max_metric_drop is None or "onnx-int8" not in names):
            raise ValueError(
                "--mixed_precision searches a variant within --max_metric_drop when onnx-int8 misses it: "
                "give both --max_metric_drop and the onnx-int8 method"
            )
        student = model_dir if isinstance(model_dir, SavedModel) else inspect_model_dir(model_dir)
        output_dir = Path(output_dir)
        method_options = method_options or {}
        if mixed_precision:
            check_output_dir(output_dir / "onnx-int8-mixed", overwrite)
        _preflight(student, names, output_dir, calibration_dataset, method_options, overwrite)
        latency_batch_sizes = tuple(latency_batch_sizes)

        def measure(model: Any, directory: Path) -> dict[str, Any]:
            return measure_costs(
                model, directory, latency_batch_sizes, latency_seq_len, latency_repeats, latency_warmup
            )

        devices = {name: method_device(name, method_options.get(name)) for name in names}
        rows: list[dict[str, Any]] = []
        reference_predictions = {}
        for device in reference_devices(devices.values()):
            logger.info("Evaluating the fp32 student %s on %s", student.path, device)
            reference_model = load_variant(student, device)
            device = _placed_on(reference_model, device, "The fp32 student")
            reference = evaluate(reference_model, eval_dataset, data_collator, compute_metrics, batch_size)
            costs = measure(reference_model, student.path)
            rows.append(_row("fp32", "student", "fp32", student.path, device, reference, costs))
            reference_predictions.setdefault(device, reference.predictions)
            _release(reference_model)
        metric = choose_main_metric(rows[0]["metrics"], main_metric)

        if teacher_dir is not None:
            logger.info("Evaluating the teacher %s", teacher_dir)
            teacher = load_variant(teacher_dir, rows[0]["device"])
            teacher_path = Path(getattr(teacher_dir, "path", teacher_dir))
            device = _placed_on(teacher, rows[0]["device"], "The teacher")
            result = evaluate(teacher, eval_dataset, data_collator, compute_metrics, batch_size)
            costs = measure(teacher, teacher_path)
            rows.append(_row("teacher", "teacher", "fp32", teacher_path, device, result, costs))
            _release(teacher)

        for name in names:
            options = dict(method_options.get(name, {}))
            if get_method(name).needs_calibration_data:
                options.setdefault("calibration_dataset", calibration_dataset)
            logger.info("Quantizing with %s", name)
            variant_dir = quantize(student, name, output_dir / name, overwrite=overwrite, **options)
            variant = load_variant(variant_dir, devices[name])
            device = _placed_on(variant, devices[name], name)
            result = evaluate(variant, eval_dataset, data_collator, compute_metrics, batch_size)
            row = _row(name, "variant", name, variant_dir, device, result, measure(variant, variant_dir))
            reference = reference_for(row, rows)
            row["verification"] = compare_predictions(
                reference_predictions[reference["device"]], result.predictions
            )
            write_verification(variant_dir, row["verification"], reference=student.path)
            rows.append(row)
            _release(variant)
            logger.info("%s on %s: %s=%.4f", name, device, metric, result.metrics.get(metric, float("nan")))

        for row in rows:
            row["deltas"] = deltas(row, reference_for(row, rows), metric)
        failures = gate(rows, max_metric_drop, metric)
        fallback = None
        if mixed_precision and any(failure.variant == "onnx-int8" for failure in failures):
            fallback = _mixed_precision_fallback(
                student,
                rows,
                output_dir,
                eval_dataset,
                data_collator,
                compute_metrics,
                metric,
                max_metric_drop,
                method_options.get("onnx-int8", {}),
                batch_size,
                overwrite,
                measure,
            )
            if fallback.get("row") is not None:
                row = fallback.pop("row")
                row["verification"] = compare_predictions(
                    reference_predictions[row["device"]], row.pop("predictions")
                )
                write_verification(Path(row["path"]), row["verification"], reference=student.path)
                row["deltas"] = deltas(row, reference_for(row, rows), metric)
                rows.append(row)
                failures = gate(rows, max_metric_drop, metric)
                if fallback["found"]:
                    failures = [failure for failure in failures if failure.variant != "onnx-int8"]

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
            },
            "max_metric_drop": max_metric_drop,
            "environment": capture_environment(),
            "violations": [failure.as_record() for failure in failures],
            "mixed_precision": fallback,
            "variants": rows,
        }
        redone = [*names, "onnx-int8-mixed"] if mixed_precision else names
        results["variants"] += earlier_variants(output_dir, student.path, redone)
        results["files"] = {key: str(path) for key, path in write_report(results, output_dir).items()}
        if failures:
            raise MetricDropError(
                "METRIC DROP ABOVE THE ALLOWED MAXIMUM vs the fp32 student (same device):\n  "
                + "\n  ".join(failure.describe() for failure in failures),
                results,
            )
        return results


def _mixed_precision_fallback(
    student,
    rows,
    output_dir,
    eval_dataset,
    data_collator,
    compute_metrics,
    metric,
    budget,
    options,
    batch_size,
    overwrite,
    measure,
) -> dict[str, Any]:
    """Search the onnx-int8-mixed variant and measure it like every other row (its predictions kept for
    verification); or record why no variant can meet the budget."""
    from hfkdq.quantization.mixed_precision import VARIANT, BudgetUnreachableError, search_mixed_precision

    reference = next(row for row in rows if row["role"] == "student" and row["device"] == "cpu")
    try:
        variant_dir = search_mixed_precision(
            student,
            output_dir / VARIANT,
            eval_dataset=eval_dataset,
            data_collator=data_collator,
            compute_metrics=compute_metrics,
            main_metric=metric,
            reference_metric=reference["metrics"][metric],
            max_metric_drop=budget,
            batch_size=batch_size,
            overwrite=overwrite,
            **{key: options[key] for key in ("cpu_target", "per_channel", "optimize") if key in options},
        )
    except BudgetUnreachableError as error:
        logger.warning("%s", error)
        return {"found": False, "reason": str(error)}
    variant = load_variant(variant_dir, "cpu")
    result = evaluate(variant, eval_dataset, data_collator, compute_metrics, batch_size)
    row = _row(VARIANT, "variant", "onnx-int8", variant_dir, "cpu", result, measure(variant, variant_dir))
    row["predictions"] = result.predictions
    _release(variant)
    record = read_metadata(variant_dir)["mixed_precision"]
    return {
        "found": True,
        "variant": VARIANT,
        "replaces": "onnx-int8",
        "nodes_in_fp32": record["nodes_in_fp32"],
        "nodes_total": len(record["nodes_in_fp32"]) + len(record["nodes_in_int8"]),
        "search_metric_drop": record["metric_drop"],
        "row": row,
    }


def earlier_variants(output_dir: Path, model_dir: Path, methods: Iterable[str]) -> list[dict[str, Any]]:
    """Variant rows of an earlier ``hfkdq quantize`` of the same student into this directory.

    A second run with other methods adds to the report instead of replacing it. Rows are kept as they
    were measured (marked ``earlier_run``) when their directory is still there and this run did not
    redo them; results of another student are never mixed in.
    """
    path = output_dir / RESULTS_FILE
    if not path.is_file():
        return []
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        logger.warning("Ignoring %s: not readable JSON; its variants are not carried over.", path)
        return []
    if Path(earlier.get("model_dir", "")).resolve() != Path(model_dir).resolve():
        logger.warning(
            "%s describes another student (%s); its variants are not carried over.",
            path,
            earlier.get("model_dir"),
        )
        return []
    redone = set(methods)
    kept = []
    for row in earlier.get("variants", []):
        if row.get("role") != "variant" or row.get("name") in redone:
            continue
        if not (output_dir / row["name"]).is_dir():
            continue
        kept.append({**row, "earlier_run": True})
    return kept


def summary_table(results: Mapping[str, Any]) -> str:
    """The markdown table of `results` (what the CLI prints)."""
    return markdown_table(dict(results))
