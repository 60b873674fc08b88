"""Quantize a saved fp32 student with one call per method name, and load any variant back.

    from hfkdq.quantization import quantize, load_variant
    out = quantize("outputs/student", "onnx-int8", "outputs/quantized/onnx-int8")
    model = load_variant(out)  # ORTModelForTokenClassification, bnb model, torch-int8 model...

Methods (see `METHODS`): onnx-fp32, onnx-int8, onnx-int8-static, bnb-8bit, bnb-4bit (nf4),
bnb-4bit-fp4, torch-int8. Backends are imported only when their method is used, so a missing optional
package fails with an ImportError naming the pip package to install, and `import hfkdq.quantization`
stays cheap. `method_device` says where a method's variant runs, so it can be compared with an fp32
model on the same device (a CPU fp32 model against a CUDA int8 model measures the GPU, not the method).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfkdq.devices import normalize_device
from hfkdq.quantization.artifacts import head_of, inspect_model_dir, read_metadata
from hfkdq.quantization.errors import (
    CalibrationDataError,
    MetricDropError,
    MissingBackendError,
    NotASavedModelError,
    UnsupportedArchitectureError,
)

_ONNX_REQUIRES = (
    ("onnxruntime", "onnxruntime"),
    ("onnx", "onnx"),
    ("optimum.onnxruntime", "optimum-onnx[onnxruntime]"),
)
_BNB_REQUIRES = (("bitsandbytes", "bitsandbytes"),)
BACKEND_DEVICE = "backend"
"""`QuantizationMethod.device` value: the backend's `default_device()` (or a `device` option) decides."""


@dataclass(frozen=True)
class QuantizationMethod:
    """One registry entry: which backend function makes it, what it needs installed, its fixed options."""

    name: str
    module: str
    function: str
    description: str
    requires: tuple[tuple[str, str], ...] = ()
    """(import name, pip package) pairs."""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    """Where the loaded variant runs: a fixed torch device, or `BACKEND_DEVICE` when it depends on the
    machine (bitsandbytes: CUDA when available). ONNX Runtime variants are loaded with the
    CPUExecutionProvider and torch-int8 kernels exist for CPU only, hence the "cpu" default."""


METHODS: dict[str, QuantizationMethod] = {
    method.name: method
    for method in (
        QuantizationMethod(
            "onnx-fp32", "onnx", "export_onnx", "ONNX Runtime, fp32 (runtime baseline)", _ONNX_REQUIRES
        ),
        QuantizationMethod(
            "onnx-int8",
            "onnx",
            "quantize_onnx_dynamic",
            "ONNX Runtime dynamic int8, config from CPU flags",
            _ONNX_REQUIRES,
        ),
        QuantizationMethod(
            "onnx-int8-static",
            "onnx",
            "quantize_onnx_static",
            "ONNX Runtime static int8 (QDQ), calibrated on training samples",
            _ONNX_REQUIRES,
        ),
        QuantizationMethod(
            "bnb-8bit",
            "bnb",
            "quantize_bnb",
            "bitsandbytes LLM.int8, head fp32",
            _BNB_REQUIRES,
            {"bits": 8},
            BACKEND_DEVICE,
        ),
        QuantizationMethod(
            "bnb-4bit",
            "bnb",
            "quantize_bnb",
            "bitsandbytes 4-bit NF4, head fp32",
            _BNB_REQUIRES,
            {"bits": 4, "quant_type": "nf4"},
            BACKEND_DEVICE,
        ),
        QuantizationMethod(
            "bnb-4bit-fp4",
            "bnb",
            "quantize_bnb",
            "bitsandbytes 4-bit FP4, head fp32",
            _BNB_REQUIRES,
            {"bits": 4, "quant_type": "fp4"},
            BACKEND_DEVICE,
        ),
        QuantizationMethod(
            "torch-int8",
            "torch_dynamic",
            "quantize_torch_dynamic",
            "PyTorch dynamic int8 on nn.Linear, head fp32",
        ),
    )
}

_LOADERS = {"onnxruntime": "onnx", "bitsandbytes": "bnb", "torch": "torch_dynamic"}
_LAZY = {"quantize_and_evaluate": "hfkdq.quantization.workflow"}

__all__ = [
    "BACKEND_DEVICE",
    "METHODS",
    "CalibrationDataError",
    "MetricDropError",
    "MissingBackendError",
    "NotASavedModelError",
    "QuantizationMethod",
    "UnsupportedArchitectureError",
    "available_methods",
    "get_method",
    "load_variant",
    "method_device",
    "normalize_device",
    "quantize",
    "quantize_and_evaluate",
    "require_backend",
]


def available_methods() -> list[str]:
    """All method names, in registry order."""
    return list(METHODS)


def get_method(name: str) -> QuantizationMethod:
    """The registry entry for `name`; an unknown name lists the valid ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"Unknown quantization method {name!r}. Valid methods: {', '.join(available_methods())}."
        ) from None


def require_backend(method: QuantizationMethod) -> None:
    """Import what `method` needs, turning a missing package into an error that names the pip package."""
    for module, package in method.requires:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise MissingBackendError(
                f"Quantization method {method.name!r} needs the Python package {package!r}, which cannot be "
                f"imported ({error}). Install it with: pip install '{package}'"
            ) from error


def method_device(name: str, options: Mapping[str, Any] | None = None) -> str:
    """The device (normalized, e.g. 'cpu', 'cuda:0') that a loaded `name` variant runs on.

    Fixed-device methods ignore `options`; for `BACKEND_DEVICE` methods a `device` option (as passed to
    `quantize`) wins, else the backend's `default_device()` decides. Pass the result to `load_variant`.
    """
    entry = get_method(name)
    if entry.device != BACKEND_DEVICE:
        return normalize_device(entry.device)
    requested = (options or {}).get("device")
    if requested is None:
        requested = importlib.import_module(f"hfkdq.quantization.{entry.module}").default_device()
    return normalize_device(str(requested))


def quantize(model_dir: str | Path, method: str, output_dir: str | Path, **options: Any) -> Path:
    """Write the `method` variant of the fp32 model in `model_dir` to `output_dir`; return `output_dir`.

    `options` go to the backend (e.g. `per_channel`, `optimize`, `cpu_target`, `calibration_dataset`,
    `double_quant`, `skip_modules`, `overwrite`). The output directory appears only when complete.
    """
    entry = get_method(method)
    require_backend(entry)
    model = inspect_model_dir(model_dir)
    backend = importlib.import_module(f"hfkdq.quantization.{entry.module}")
    function = getattr(backend, entry.function)
    return Path(function(model, Path(output_dir), **{**entry.defaults, **options}))


def load_variant(directory: str | Path, device: str | None = None):
    """Load any variant written by `quantize` (or a plain fp32 HF directory) ready for inference.

    The backend is read from the directory's `hfkdq_quantization.json`; without it the directory is
    loaded as an fp32 `AutoModelFor...Classification`. `device` places fp32 and bitsandbytes models
    (None: fp32 on CPU, bitsandbytes on its default device); ONNX Runtime and torch-int8 variants run
    on the CPU whatever it says (see `method_device`).
    """
    directory = Path(directory)
    metadata = read_metadata(directory)
    backend = metadata.get("backend")
    if backend is None:
        import torch

        model = inspect_model_dir(directory)
        loaded = model.auto_class().from_pretrained(directory, dtype=torch.float32).eval()
        return loaded.to(device) if device else loaded
    if backend not in _LOADERS:
        raise ValueError(f"{directory}: unknown backend {backend!r} in its hfkdq_quantization.json")
    require_backend(get_method(metadata["method"]))
    module = importlib.import_module(f"hfkdq.quantization.{_LOADERS[backend]}")
    head = metadata.get("head")
    if head is None:
        from transformers import AutoConfig

        head = head_of(AutoConfig.from_pretrained(directory), directory)
    if backend == "onnxruntime":
        return module.load_onnx(directory, head)
    if backend == "bitsandbytes":
        return module.load_bnb(directory, head, device=device)
    return module.load_torch_int8(directory)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hfkdq.quantization' has no attribute {name!r}")
