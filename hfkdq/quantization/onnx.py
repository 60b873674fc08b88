"""ONNX Runtime variants through Optimum: fp32 export, dynamic int8, static (calibrated) int8.

Every output is a directory with one `model.onnx`, the config (label maps included), the tokenizer and
Optimum's `ort_config.json`, so `ORTModelFor...Classification.from_pretrained(dir)` loads it and it
runs inside `transformers.pipeline`.

Why the int8 config is chosen from the CPU: ONNX Runtime's int8 kernels differ per instruction set.
u8/s8 weights use VNNI's VPDPBUSD on AVX512-VNNI (and AVX-VNNI) CPUs; on plain AVX2 the u8/s8 path can
saturate, so Optimum's avx2 config uses u8/u8, which on a VNNI CPU was measured 3x slower. ARM64 has
its own config. The detected target is recorded in the output's metadata.

Graph optimisation (`optimize=`) runs *after* quantization for the int8 variants: with
onnxruntime 1.32 / optimum-onnx 0.1, quantizing an already-optimised graph fails in ORT's shape
inference ("Unable to find data type for weight_name=..."), while optimising the quantized graph fuses
it into DynamicQuantizeMatMul/MatMulIntegerToFloat and works.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hfkdq.outputs import atomic_output_dir, check_output_dir
from hfkdq.quantization.artifacts import (
    SavedModel,
    save_tokenizer,
    write_metadata,
)
from hfkdq.quantization.errors import CalibrationDataError, UnsupportedArchitectureError

logger = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
ORT_CONFIG_FILE = "ort_config.json"
CPU_TARGETS = ("avx512_vnni", "avx512", "avx2", "arm64")
OPTIMUM_TASKS = {"sequence": "text-classification", "token": "token-classification"}
VNNI_FLAGS = frozenset({"avx512_vnni", "avx512vnni", "avx_vnni"})


def cpu_flags(cpuinfo_text: str | None = None) -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (Linux); empty where that file does not exist."""
    if cpuinfo_text is None:
        try:
            cpuinfo_text = Path("/proc/cpuinfo").read_text()
        except OSError:
            return frozenset()
    flags: set[str] = set()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return frozenset(flags)


def detect_cpu_target(cpuinfo_text: str | None = None, machine: str | None = None) -> str:
    """Which of Optimum's `AutoQuantizationConfig` presets fits this CPU: avx512_vnni, avx512, avx2 or arm64."""
    machine = (machine or platform.machine()).lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    flags = cpu_flags(cpuinfo_text)
    if flags & VNNI_FLAGS:
        return "avx512_vnni"
    if "avx512f" in flags and "avx512bw" in flags:
        return "avx512"
    if not flags:
        logger.warning(
            "CPU flags unknown on %s; using the avx2 int8 config (correct everywhere, not fastest).", machine
        )
    return "avx2"


def quantization_config(target: str | None, *, is_static: bool, per_channel: bool, **kwargs: Any):
    """Optimum's preset for `target` (detected when None)."""
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    target = target or detect_cpu_target()
    if target not in CPU_TARGETS:
        raise ValueError(
            f"Unknown cpu_target {target!r}; choose one of {', '.join(CPU_TARGETS)} (or None to detect)."
        )
    return getattr(AutoQuantizationConfig, target)(is_static=is_static, per_channel=per_channel, **kwargs)


def ort_model_class(head: str):
    """`ORTModelForSequenceClassification` or `ORTModelForTokenClassification`."""
    from optimum.onnxruntime import ORTModelForSequenceClassification, ORTModelForTokenClassification

    return ORTModelForTokenClassification if head == "token" else ORTModelForSequenceClassification


def check_exportable(model: SavedModel) -> None:
    """Fail with a clear message, before any export work, when Optimum has no ONNX config for this model."""
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX export configs)
    from optimum.exporters.tasks import TasksManager

    task = OPTIMUM_TASKS[model.head]
    try:
        tasks = TasksManager.get_supported_tasks_for_model_type(
            model.model_type, exporter="onnx", library_name="transformers"
        )
    except KeyError:
        tasks = {}
    if task not in tasks:
        raise UnsupportedArchitectureError(
            f"Optimum cannot export model type {model.model_type!r} ({model.path}) to ONNX for {task}. "
            "Use a method that quantizes the PyTorch model instead (torch-int8, bnb-8bit, bnb-4bit), "
            "or pass a custom ONNX config to optimum's exporter yourself."
        )


def export(model: SavedModel, directory: Path) -> Path:
    """Export the fp32 model to `directory/model.onnx` with Optimum (config and tokenizer alongside)."""
    check_exportable(model)
    try:
        with warnings.catch_warnings():
            # The tracer's notes on constant mask tensors are expected for HF encoders and harmless.
            warnings.filterwarnings("ignore", message=".*registered as constants in the trace.*")
            ort_model = ort_model_class(model.head).from_pretrained(model.path, export=True)
    except ValueError as error:
        if "unsupported architecture" in str(error) or "custom_onnx_configs" in str(error):
            raise UnsupportedArchitectureError(
                f"Optimum cannot export {model.path} ({model.model_type}) to ONNX: {error}"
            ) from error
        raise
    ort_model.save_pretrained(directory)
    return directory / ONNX_FILE


def _optimize(onnx_dir: Path, target_dir: Path, level: int) -> None:
    """Apply ORT's transformer graph fusions to the single model in `onnx_dir`, writing `target_dir/model.onnx`."""
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import OptimizationConfig

    optimizer = ORTOptimizer.from_pretrained(onnx_dir, file_names=[ONNX_FILE])
    optimizer.optimize(OptimizationConfig(optimization_level=level), save_dir=target_dir, file_suffix=None)
    _merge_ort_configs(onnx_dir / ORT_CONFIG_FILE, target_dir / ORT_CONFIG_FILE)


def _merge_ort_configs(quantized: Path, optimized: Path) -> None:
    """Keep the quantization section in `ort_config.json`: the optimizer rewrites the file without it."""
    if not (quantized.is_file() and optimized.is_file()):
        return
    quantization = json.loads(quantized.read_text()).get("quantization")
    if quantization:
        merged = json.loads(optimized.read_text())
        merged["quantization"] = quantization
        optimized.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")


def _optimization_level(optimize: bool | int) -> int | None:
    if not optimize:
        return None
    level = 2 if optimize is True else int(optimize)
    if level not in (1, 2, 99):
        raise ValueError(
            f"optimize must be False, True or an ORT optimization level 1, 2 or 99; got {optimize!r}"
        )
    return level


def _finish(
    model: SavedModel,
    quantized_dir: Path,
    output_dir: Path,
    *,
    method: str,
    options: dict[str, Any],
    level: int | None,
    overwrite: bool,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Move the (optionally optimised) model into a complete output directory, atomically."""
    with atomic_output_dir(output_dir, overwrite) as staging:
        if level is None:
            for item in quantized_dir.iterdir():
                if item.is_file():  # scratch may be on another filesystem: move, not rename
                    shutil.move(str(item), staging / item.name)
        else:
            _optimize(quantized_dir, staging, level)
        model.config.save_pretrained(staging)  # the label maps of the student, whatever Optimum wrote
        save_tokenizer(model.path, staging)
        write_metadata(
            staging,
            method=method,
            backend="onnxruntime",
            source=model,
            options=options,
            load_with=f"optimum.onnxruntime.{ort_model_class(model.head).__name__}.from_pretrained(dir)",
            extra=extra,
        )
    return output_dir


def export_onnx(
    model: SavedModel, output_dir: str | Path, *, optimize: bool | int = False, overwrite: bool = False
) -> Path:
    """fp32 ONNX export (the runtime baseline: ORT without quantization)."""
    output_dir = check_output_dir(output_dir, overwrite)
    level = _optimization_level(optimize)
    with tempfile.TemporaryDirectory(prefix="hfkdq-onnx-") as scratch:
        exported = Path(scratch) / "export"
        export(model, exported)
        return _finish(
            model,
            exported,
            output_dir,
            method="onnx-fp32",
            options={"optimize": level},
            level=level,
            overwrite=overwrite,
        )


def quantize_onnx_dynamic(
    model: SavedModel,
    output_dir: str | Path,
    *,
    cpu_target: str | None = None,
    per_channel: bool = True,
    optimize: bool | int = False,
    overwrite: bool = False,
) -> Path:
    """Dynamic int8: weights quantized ahead of time, activations per batch at run time (no data needed)."""
    from optimum.onnxruntime import ORTQuantizer

    output_dir = check_output_dir(output_dir, overwrite)
    level = _optimization_level(optimize)
    target = cpu_target or detect_cpu_target()
    config = quantization_config(target, is_static=False, per_channel=per_channel)
    with tempfile.TemporaryDirectory(prefix="hfkdq-onnx-") as scratch:
        exported = export(model, Path(scratch) / "export")
        quantized = Path(scratch) / "quantized"
        ORTQuantizer.from_pretrained(exported.parent, file_name=ONNX_FILE).quantize(
            quantization_config=config, save_dir=quantized, file_suffix=None
        )
        options = {"cpu_target": target, "per_channel": per_channel, "optimize": level}
        return _finish(
            model,
            quantized,
            output_dir,
            method="onnx-int8",
            options=options,
            level=level,
            overwrite=overwrite,
        )


def _calibration_subset(calibration_dataset: Any, samples: int | None, seed: int):
    from datasets import Dataset

    if calibration_dataset is None:
        raise CalibrationDataError(
            "onnx-int8-static calibrates activation ranges on real inputs, but no calibration data was given: "
            "pass calibration_dataset= (tokenized training examples with input_ids/attention_mask), "
            "or on the CLI give training data (--data_dir / --train_file), or use onnx-int8 (dynamic)."
        )
    if isinstance(calibration_dataset, list):
        calibration_dataset = Dataset.from_list(calibration_dataset)
    if len(calibration_dataset) == 0:
        raise CalibrationDataError("onnx-int8-static: the calibration dataset is empty.")
    if samples is not None and len(calibration_dataset) > samples:
        calibration_dataset = calibration_dataset.shuffle(seed=seed).select(range(samples))
    return calibration_dataset


def quantize_onnx_static(
    model: SavedModel,
    output_dir: str | Path,
    *,
    calibration_dataset: Any = None,
    calibration_samples: int | None = 100,
    calibration_method: str = "minmax",
    cpu_target: str | None = None,
    per_channel: bool = False,
    optimize: bool | int = False,
    seed: int = 42,
    overwrite: bool = False,
    operators_to_quantize: Sequence[str] | None = None,
) -> Path:
    """Static int8 (QDQ): activation ranges calibrated on training samples, so no run-time range search.

    `calibration_dataset` holds tokenized examples (a `datasets.Dataset` or list of dicts); columns
    that are not ONNX inputs (labels, ...) are dropped. `calibration_samples` are drawn from it at random.
    """
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoCalibrationConfig

    output_dir = check_output_dir(output_dir, overwrite)
    level = _optimization_level(optimize)
    subset = _calibration_subset(calibration_dataset, calibration_samples, seed)
    if not hasattr(AutoCalibrationConfig, calibration_method):
        raise ValueError(
            f"Unknown calibration_method {calibration_method!r}; use minmax, entropy or percentiles."
        )
    target = cpu_target or detect_cpu_target()
    config = quantization_config(
        target,
        is_static=True,
        per_channel=per_channel,
        operators_to_quantize=list(operators_to_quantize) if operators_to_quantize else None,
    )
    with tempfile.TemporaryDirectory(prefix="hfkdq-onnx-") as scratch:
        exported = export(model, Path(scratch) / "export")
        quantizer = ORTQuantizer.from_pretrained(exported.parent, file_name=ONNX_FILE)
        subset = quantizer.clean_calibration_dataset(subset)
        ranges = quantizer.fit(
            dataset=subset,
            calibration_config=getattr(AutoCalibrationConfig, calibration_method)(subset),
            operators_to_quantize=config.operators_to_quantize,
            onnx_augmented_model_name=Path(scratch) / "augmented_model.onnx",
        )
        quantized = Path(scratch) / "quantized"
        quantizer.quantize(
            quantization_config=config, save_dir=quantized, file_suffix=None, calibration_tensors_range=ranges
        )
        options = {
            "cpu_target": target,
            "per_channel": per_channel,
            "optimize": level,
            "calibration_method": calibration_method,
            "calibration_samples": len(subset),
            "seed": seed,
        }
        return _finish(
            model,
            quantized,
            output_dir,
            method="onnx-int8-static",
            options=options,
            level=level,
            overwrite=overwrite,
        )


def load_onnx(
    directory: str | Path,
    head: str,
    device: str | None = None,
    provider: str = "CPUExecutionProvider",
    session_options: Any = None,
):
    """Load a variant written here as an `ORTModelFor...Classification`.

    `device` is accepted for the common loader signature and ignored: the execution `provider` decides
    where ONNX Runtime computes (the CPU by default, which is where the int8 kernels are tuned).
    `session_options` (an `onnxruntime.SessionOptions`) sets threads or profiling.
    """
    return ort_model_class(head).from_pretrained(
        Path(directory), provider=provider, session_options=session_options
    )
