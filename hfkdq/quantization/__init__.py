"""Quantize a saved fp32 student with one call per method name, and load any variant back.

    from hfkdq.quantization import quantize, load_variant
    out = quantize("outputs/student", "onnx-int8", "outputs/quantized/onnx-int8")
    model = load_variant(out)  # ORTModelForTokenClassification, bnb model, torch-int8 model...

Methods (see `METHODS`): onnx-fp32, onnx-int8, onnx-int8-static, bnb-8bit, bnb-4bit (nf4),
bnb-4bit-fp4, torch-int8. Each entry carries what callers need to know about its method (backend,
options, calibration data, device), so no caller branches on a method's name.

This package only re-exports: the registry of methods and backends is `hfkdq.quantization.registry`,
`quantize`/`load_variant` are `hfkdq.quantization.api`, the multi-method measurement is
`hfkdq.quantization.workflow` (loaded on first use: it imports torch), and each backend is its own
module (`onnx`, `bnb`, `torch_dynamic`), imported only when one of its methods is used.
"""

from __future__ import annotations

import importlib

from hfkdq.devices import normalize_device
from hfkdq.quantization.api import load_variant, quantize
from hfkdq.quantization.errors import (
    CalibrationDataError,
    MetricDropError,
    MissingBackendError,
    NotASavedModelError,
    UnsupportedArchitectureError,
)
from hfkdq.quantization.registry import (
    BACKEND_DEVICE,
    BACKENDS,
    METHODS,
    Backend,
    QuantizationMethod,
    available_methods,
    check_options,
    get_method,
    method_device,
    parse_methods,
    require_backend,
)

_LAZY = {"quantize_and_evaluate": "hfkdq.quantization.workflow"}

__all__ = [
    "BACKENDS",
    "BACKEND_DEVICE",
    "METHODS",
    "Backend",
    "CalibrationDataError",
    "MetricDropError",
    "MissingBackendError",
    "NotASavedModelError",
    "QuantizationMethod",
    "UnsupportedArchitectureError",
    "available_methods",
    "check_options",
    "get_method",
    "load_variant",
    "method_device",
    "normalize_device",
    "parse_methods",
    "quantize",
    "quantize_and_evaluate",
    "require_backend",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hfkdq.quantization' has no attribute {name!r}")
