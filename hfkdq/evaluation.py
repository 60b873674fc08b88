"""One evaluation loop for every variant (PyTorch fp32, bitsandbytes, torch-int8, ONNX Runtime), plus
the costs that make quantization worth it: size on disk, memory held by weights, and latency.

All variants go through the same batches (same collator, same order) and the same `compute_metrics`
the training code uses, so a metric difference between two rows is the model's, not the harness's.
ORTModels accept and return torch tensors, which is what lets one loop serve both runtimes.
"""

from __future__ import annotations

import inspect
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import EvalPrediction

from hfkdq.devices import normalize_device
from hfkdq.heads import IGNORE_INDEX

INPUT_COLUMNS = ("input_ids", "attention_mask", "token_type_ids")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".onnx_data", ".pt", ".pth")


@dataclass
class Predictions:
    """Logits of a whole dataset, padded to one length for token classification.

    `attention_mask` marks real tokens (1) vs padding (0), so comparisons can ignore padding.
    """

    logits: np.ndarray
    label_ids: np.ndarray | None
    attention_mask: np.ndarray


@dataclass
class EvaluationResult:
    metrics: dict[str, float]
    predictions: Predictions
    seconds: float


def is_onnx_model(model: Any) -> bool:
    """Whether `model` is an Optimum ORTModel (weights live in an ONNX file, not in torch parameters).

    Looked up in `sys.modules`, not imported: an ORTModel exists only once optimum.onnxruntime has been
    imported, and evaluating a PyTorch model must not import (or need) the optional ONNX extra.
    """
    onnxruntime_module = sys.modules.get("optimum.onnxruntime")
    return onnxruntime_module is not None and isinstance(model, onnxruntime_module.ORTModel)


def model_input_names(model: Any) -> set[str]:
    """Which of input_ids/attention_mask/token_type_ids the model takes (DistilBERT has no token types)."""
    if is_onnx_model(model):
        return set(model.input_names)
    parameters = inspect.signature(model.forward).parameters
    return {name for name in INPUT_COLUMNS if name in parameters}


def model_device(model: Any) -> torch.device:
    """Where inputs must go: the model's device for torch models, CPU for ONNX Runtime (it copies itself)."""
    if is_onnx_model(model):
        return torch.device("cpu")
    return next(model.parameters()).device


def runtime_device(model: Any) -> str:
    """Where `model` computes ('cpu', 'cuda:0'), which is what its latency measures.

    Unlike `model_device` (where inputs go), an ONNX Runtime model reports its execution provider's
    device, so a CUDA session is not mistaken for a CPU one in a report.
    """
    device = model.device if is_onnx_model(model) else next(model.parameters()).device
    return normalize_device(str(device))


def _batches(dataset: Any, data_collator: Callable, batch_size: int) -> Iterable[dict[str, torch.Tensor]]:
    keep = [column for column in (*INPUT_COLUMNS, "labels") if column in dataset.column_names]
    dataset = dataset.select_columns(keep)
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        examples = [{key: rows[key][i] for key in keep} for i in range(len(rows[keep[0]]))]
        yield data_collator(examples)


def _pad_and_stack(arrays: list[np.ndarray], pad_value: float) -> np.ndarray:
    """Concatenate batches along axis 0, padding axis 1 (sequence) to the longest batch."""
    if arrays[0].ndim == 1 or all(array.shape[1:] == arrays[0].shape[1:] for array in arrays):
        return np.concatenate(arrays)
    length = max(array.shape[1] for array in arrays)
    padded = []
    for array in arrays:
        widths = [(0, 0), (0, length - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
        padded.append(np.pad(array, widths, constant_values=pad_value))
    return np.concatenate(padded)


@torch.inference_mode()
def predict(model: Any, dataset: Any, data_collator: Callable, batch_size: int = 32) -> Predictions:
    """Run `model` over a tokenized dataset (input_ids/attention_mask/(token_type_ids)/(labels))."""
    if len(dataset) == 0:
        raise ValueError("The evaluation dataset is empty.")
    if hasattr(model, "eval"):
        model.eval()
    names = model_input_names(model)
    device = model_device(model)
    logits, labels, masks = [], [], []
    for batch in _batches(dataset, data_collator, batch_size):
        inputs = {name: tensor.to(device) for name, tensor in batch.items() if name in names}
        output = model(**inputs)
        logits.append(output.logits.detach().float().cpu().numpy())
        masks.append(batch["attention_mask"].numpy())
        if "labels" in batch:
            labels.append(batch["labels"].numpy())
    return Predictions(
        logits=_pad_and_stack(logits, 0.0),
        label_ids=_pad_and_stack(labels, IGNORE_INDEX) if labels else None,
        attention_mask=_pad_and_stack(masks, 0),
    )


def evaluate(
    model: Any,
    dataset: Any,
    data_collator: Callable,
    compute_metrics: Callable[[EvalPrediction], dict[str, float]],
    batch_size: int = 32,
) -> EvaluationResult:
    """Predict, then score with the training code's `compute_metrics(EvalPrediction)`."""
    started = time.perf_counter()
    predictions = predict(model, dataset, data_collator, batch_size)
    seconds = time.perf_counter() - started
    if predictions.label_ids is None:
        raise ValueError(
            "The evaluation dataset has no 'labels' column, so there is nothing to score against."
        )
    metrics = compute_metrics(EvalPrediction(predictions=predictions.logits, label_ids=predictions.label_ids))
    metrics = {key.removeprefix("eval_"): float(value) for key, value in metrics.items()}
    return EvaluationResult(metrics=metrics, predictions=predictions, seconds=seconds)


def weights_size_bytes(model_dir: str | Path) -> int:
    """Bytes of the weight files in a model directory (safetensors/bin/onnx/pt), not tokenizer or config."""
    return sum(
        path.stat().st_size
        for path in Path(model_dir).rglob("*")
        if path.is_file() and path.name.endswith(WEIGHT_SUFFIXES)
    )


def _onnx_files_bytes(model: Any) -> int:
    path = Path(model.path)
    files = [path, *path.parent.glob(path.name + "_data"), *path.parent.glob(path.stem + ".onnx.data")]
    return sum(file.stat().st_size for file in files if file.is_file())


def parameter_memory_bytes(model: Any) -> int:
    """Bytes the weights occupy in memory.

    torch: parameters + buffers (bitsandbytes' packed int8/uint8 tensors count at their real size)
    + the packed int8 weights of dynamically quantized Linear layers, which are not parameters.
    ONNX Runtime: the model file size (its initializers are what the session holds).
    """
    if is_onnx_model(model):
        return _onnx_files_bytes(model)
    seen: set[int] = set()
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    for module in model.modules():
        if isinstance(module, DynamicQuantizedLinear):
            weight, bias = module.weight(), module.bias()
            total += weight.numel() * weight.element_size()
            total += 0 if bias is None else bias.numel() * bias.element_size()
    return total


def dummy_inputs(model: Any, batch_size: int, seq_len: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A seeded random (batch_size, seq_len) batch with the inputs `model` takes, on its device: what
    latency is timed on (and what benchmarks/speed.py profiles), the same for every variant."""
    generator = torch.Generator().manual_seed(seed)
    vocab_size = getattr(model.config, "vocab_size", 30522)
    inputs = {
        "input_ids": torch.randint(0, vocab_size, (batch_size, seq_len), generator=generator),
        "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),
        "token_type_ids": torch.zeros(batch_size, seq_len, dtype=torch.long),
    }
    device = model_device(model)
    return {name: tensor.to(device) for name, tensor in inputs.items() if name in model_input_names(model)}


@torch.inference_mode()
def measure_latency(
    model: Any, batch_size: int, seq_len: int = 128, repeats: int = 20, warmup: int = 3
) -> float:
    """Median wall-clock milliseconds of one forward pass on a (batch_size, seq_len) batch.

    Warm-up runs are discarded (first calls allocate, pack weights, JIT kernels); the median is robust
    to the odd slow run a shared machine produces. CUDA work is synchronised before each clock read.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if hasattr(model, "eval"):
        model.eval()
    inputs = dummy_inputs(model, batch_size, seq_len)
    cuda = model_device(model).type == "cuda"
    for _ in range(warmup):
        model(**inputs)
    timings = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        model(**inputs)
        if cuda:
            torch.cuda.synchronize()
        timings.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(timings)


def measure_costs(
    model: Any,
    model_dir: str | Path,
    batch_sizes: Iterable[int] = (1, 32),
    seq_len: int = 128,
    repeats: int = 20,
    warmup: int = 3,
) -> dict[str, Any]:
    """Size on disk, weight memory and latency per batch size (latency skipped when repeats == 0)."""
    latency = {}
    if repeats > 0:
        latency = {
            f"batch_{size}": measure_latency(model, size, seq_len, repeats, warmup) for size in batch_sizes
        }
    return {
        "size_bytes": weights_size_bytes(model_dir),
        "param_memory_bytes": parameter_memory_bytes(model),
        "latency_ms": latency,
    }
