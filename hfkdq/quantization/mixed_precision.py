"""Mixed precision for ONNX Runtime dynamic int8: keep the MatMuls that int8 hurts most in fp32, so the
variant meets a metric budget that full int8 misses.

Intel Neural Compressor's accuracy-aware tuning is the model: fall operators back to higher precision
until the metric criterion holds. Here, on the held-out batches the variant is judged on:

1. Sensitivity: each weight MatMul (and embedding Gather) is quantized *alone* (ORT ``nodes_to_quantize=[node]``) and the mean
   absolute logit difference against the fp32 ONNX model is its damage.
2. Budget check: the fp32 ONNX export itself (every node excluded) is scored first; if even it loses
   more than the budget against the fp32 PyTorch student, no mixed variant can meet it, and the search
   says so and writes nothing.
3. Search: excluding the k most sensitive nodes (ORT ``nodes_to_exclude``), binary search for the
   smallest k whose metric drop is within the budget. Every probe is a real quantization scored with the
   task's metric, and the k written out is one that was measured to meet the budget.

The variant (`onnx-int8-mixed`, method onnx-int8) records which nodes stayed fp32, every node's sensitivity and every
probe in its `hfkdq_quantization.json`.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hfkdq.evaluation import evaluate, predict
from hfkdq.outputs import check_output_dir
from hfkdq.quantization.artifacts import SavedModel
from hfkdq.quantization.onnx import (
    ONNX_FILE,
    _finish,
    _optimization_level,
    detect_cpu_target,
    export,
    ort_model_class,
    quantization_config,
)
from hfkdq.quantization.verify import compare_predictions

logger = logging.getLogger(__name__)

VARIANT = "onnx-int8-mixed"
"""The variant's directory (and Hub branch) name; its metadata says method onnx-int8, which it is: the
same ONNX Runtime dynamic int8 with some nodes excluded, loaded the same way."""
SENSITIVITY_SAMPLES = 256


class BudgetUnreachableError(ValueError):
    """Even the model with every MatMul in fp32 loses more than the allowed metric drop."""


WEIGHT_OPS = ("MatMul", "Gather")
"""Operators whose constant weight dynamic int8 quantizes: the Linears, and the embedding lookups."""


def weight_nodes(onnx_path: str | Path) -> list[str]:
    """Names of the MatMul/Gather nodes with a constant weight, in graph order: what dynamic int8 changes.

    A MatMul between two activations (attention scores) and a Gather of shapes are not among them.
    """
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    initializers = {initializer.name for initializer in graph.initializer}
    return [
        node.name
        for node in graph.node
        if node.op_type in WEIGHT_OPS
        and node.input
        and node.input[0 if node.op_type == "Gather" else 1] in initializers
    ]


class _Prober:
    """Quantize the exported fp32 model with a node selection, load it, and predict or score it."""

    def __init__(self, model: SavedModel, exported: Path, scratch: Path, target: str, per_channel: bool):
        self.model, self.exported, self.scratch = model, exported, scratch
        self.target, self.per_channel = target, per_channel
        self.count = 0

    def config(self, *, include: list[str] | None = None, exclude: list[str] | None = None):
        return quantization_config(
            self.target,
            is_static=False,
            per_channel=self.per_channel,
            nodes_to_quantize=include,
            nodes_to_exclude=exclude,
        )

    def build(self, config) -> Path:
        from optimum.onnxruntime import ORTQuantizer

        self.count += 1
        directory = self.scratch / f"probe-{self.count}"
        ORTQuantizer.from_pretrained(self.exported, file_name=ONNX_FILE).quantize(
            quantization_config=config, save_dir=directory, file_suffix=None
        )
        return directory

    def load(self, directory: Path):
        self.model.config.save_pretrained(directory)
        return ort_model_class(self.model.head).from_pretrained(directory)


def _drop(reference_metric: float, metrics: dict[str, float], main_metric: str) -> float:
    """Metric points lost (x100 of a fraction metric), as the quality gate counts them."""
    return (reference_metric - metrics[main_metric]) * 100.0


def search_mixed_precision(
    model: SavedModel,
    output_dir: str | Path,
    *,
    eval_dataset: Any,
    data_collator: Callable,
    compute_metrics: Callable,
    main_metric: str,
    reference_metric: float,
    max_metric_drop: float,
    cpu_target: str | None = None,
    per_channel: bool = True,
    optimize: bool | int = False,
    sensitivity_samples: int = SENSITIVITY_SAMPLES,
    batch_size: int = 32,
    overwrite: bool = False,
) -> Path:
    """Write the `onnx-int8-mixed` variant of `model` to `output_dir`, within `max_metric_drop` points of
    `reference_metric` (the fp32 student's `main_metric` on `eval_dataset`); return `output_dir`.

    Raises `BudgetUnreachableError` (and writes nothing) when even the all-fp32 ONNX model misses it.
    """
    if not (
        isinstance(max_metric_drop, int | float) and math.isfinite(max_metric_drop) and max_metric_drop >= 0
    ):
        raise ValueError(
            f"max_metric_drop must be a finite number >= 0 (metric points); got {max_metric_drop!r}"
        )
    output_dir = check_output_dir(output_dir, overwrite)
    level = _optimization_level(optimize)
    target = cpu_target or detect_cpu_target()
    subset = eval_dataset.select(range(min(sensitivity_samples, len(eval_dataset))))
    with tempfile.TemporaryDirectory(prefix="hfkdq-mixed-") as scratch:
        scratch = Path(scratch)
        exported = export(model, scratch / "export").parent
        nodes = weight_nodes(exported / ONNX_FILE)
        prober = _Prober(model, exported, scratch, target, per_channel)

        def score(excluded: list[str]) -> float:
            variant = prober.load(prober.build(prober.config(exclude=excluded or None)))
            return _drop(
                reference_metric,
                evaluate(variant, eval_dataset, data_collator, compute_metrics, batch_size).metrics,
                main_metric,
            )

        fp32 = ort_model_class(model.head).from_pretrained(exported)
        fp32_drop = _drop(
            reference_metric,
            evaluate(fp32, eval_dataset, data_collator, compute_metrics, batch_size).metrics,
            main_metric,
        )
        if fp32_drop > max_metric_drop:
            raise BudgetUnreachableError(
                f"no mixed-precision variant can meet --max_metric_drop {max_metric_drop:g}: even with every MatMul "
                f"in fp32 the ONNX model loses {fp32_drop:.2f} {main_metric} points against the fp32 student; "
                "allow a larger drop, or ship the fp32 model"
            )
        fp32_logits = predict(fp32, subset, data_collator, batch_size)
        sensitivity = {}
        for node in nodes:
            alone = prober.load(prober.build(prober.config(include=[node])))
            error = compare_predictions(fp32_logits, predict(alone, subset, data_collator, batch_size))
            sensitivity[node] = error["mean_abs_logit_diff"]
        ranked = sorted(nodes, key=lambda node: -sensitivity[node])
        probes = {len(nodes): score(ranked), 0: score([])}  # all excluded: the quantizer changes nothing
        if probes[len(nodes)] > max_metric_drop:
            raise BudgetUnreachableError(
                f"no mixed-precision variant can meet --max_metric_drop {max_metric_drop:g}: with every weight node "
                f"excluded the quantized model loses {probes[len(nodes)]:.2f} {main_metric} points"
            )
        low, high = 0, len(nodes)  # invariant: `low` misses the budget (or is untested), `high` meets it
        if probes[0] <= max_metric_drop:
            high = 0
        while high - low > 1:
            middle = (low + high) // 2
            probes[middle] = score(ranked[:middle])
            low, high = (low, middle) if probes[middle] <= max_metric_drop else (middle, high)
        excluded = ranked[:high]
        logger.info(
            "Mixed precision: %d of %d MatMuls kept in fp32 for a drop of %.2f points (budget %.2f).",
            high,
            len(nodes),
            probes[high],
            max_metric_drop,
        )
        final = prober.build(prober.config(exclude=excluded or None))
        record = {
            "max_metric_drop": max_metric_drop,
            "main_metric": main_metric,
            "reference_metric": reference_metric,
            "metric_drop": probes[high],
            "full_int8_metric_drop": probes[0],
            "fp32_onnx_metric_drop": fp32_drop,
            "nodes_in_fp32": excluded,
            "nodes_in_int8": [node for node in nodes if node not in excluded],
            "sensitivity": {
                "measure": "mean |logit - fp32 ONNX logit|, node alone in int8",
                "samples": len(subset),
                "by_node": sensitivity,
            },
            "probes": [{"nodes_in_fp32": k, "metric_drop": drop} for k, drop in sorted(probes.items())],
        }
        options = {
            "cpu_target": target,
            "per_channel": per_channel,
            "optimize": level,
            "nodes_to_exclude": excluded,
        }
        return _finish(
            model,
            final,
            output_dir,
            method="onnx-int8",
            options=options,
            level=level,
            overwrite=overwrite,
            extra={"mixed_precision": json.loads(json.dumps(record))},
        )
