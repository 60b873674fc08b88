"""The quantization methods hfkdq knows, as data: each method's backend, options, calibration needs and
device, and the queries every caller uses (`get_method`, `parse_methods`, `method_device`...).

A method is one `QuantizationMethod` row of `METHODS`; adding a backend is one `Backend` row of
`BACKENDS` plus a module `hfkdq.quantization.<module>` with its quantize/load functions. Backends are
imported only when their method is used (`Backend.load_module`), so importing the registry is cheap
and never imports optimum or onnxruntime. A missing backend fails with an ImportError naming what to
install (for the onnx-* methods the `hfkdq[onnx]` extra, which needs transformers <4.58), and
`parse_methods` raises it before any work. `method_device` says where a method's variant runs, so it
can be compared with an fp32 model on the same device (a CPU fp32 model against a CUDA int8 model
measures the GPU, not the method).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hfkdq.devices import normalize_device
from hfkdq.quantization.errors import MissingBackendError

BACKEND_DEVICE = "backend"
"""`QuantizationMethod.device` value: the backend's `default_device()` (or a `device` option) decides."""


@dataclass(frozen=True)
class Backend:
    """A runtime that variants are made for: its module here, what it needs installed, how a variant loads.

    `name` is what a variant's `hfkdq_quantization.json` records as its "backend", so `load_variant`
    finds the loader from the file alone. `loader(directory, head, device=None)` is a function of
    `hfkdq.quantization.<module>`; so is `check(SavedModel)`, when set, which fails before any work when
    the backend cannot handle a model (e.g. no ONNX export config for its architecture).
    """

    name: str
    module: str
    loader: str
    title: str
    requires: tuple[tuple[str, str], ...] = ()
    """(import name, pip package) pairs."""
    extra: str | None = None
    """The `hfkdq[...]` extra that installs `requires`, when they are not core dependencies."""
    extra_note: str = ""
    """What the extra's packages support, said whenever they are missing."""
    check: str | None = None
    """Function of the backend's module that rejects a `SavedModel` it cannot handle, before any work."""

    def load_module(self):
        """`hfkdq.quantization.<module>`: imported only here, so an unused backend costs nothing."""
        return importlib.import_module(f"hfkdq.quantization.{self.module}")

    def missing_message(self, method: str, module: str, package: str, error: ImportError) -> str:
        """What to install when `module` cannot be imported: the extra when there is one, else the package."""
        if self.extra is None:
            return (
                f"Quantization method {method!r} needs the Python package {package!r}, which cannot be "
                f"imported ({error}). Install it with: pip install '{package}'"
            )
        from importlib import metadata

        try:
            transformers_version = metadata.version("transformers")
        except metadata.PackageNotFoundError:
            transformers_version = "none"
        return (
            f"Quantization method {method!r} needs the {self.title} extra: pip install 'hfkdq[{self.extra}]' "
            f"({self.extra_note}; you have transformers {transformers_version}). "
            f"{module!r} cannot be imported: {error}"
        )


BACKENDS: dict[str, Backend] = {
    backend.name: backend
    for backend in (
        Backend(
            "onnxruntime",
            "onnx",
            "load_onnx",
            "ONNX Runtime",
            requires=(
                ("onnxruntime", "onnxruntime"),
                ("onnx", "onnx"),
                ("optimum.onnxruntime", "optimum-onnx[onnxruntime]"),
            ),
            extra="onnx",
            extra_note="optimum-onnx 0.1 supports transformers >=4.57,<4.58",
            check="check_exportable",
        ),
        Backend(
            "bitsandbytes", "bnb", "load_bnb", "bitsandbytes", requires=(("bitsandbytes", "bitsandbytes"),)
        ),
        Backend("torch", "torch_dynamic", "load_torch_int8", "PyTorch"),
    )
}

_ONNX_OPTIONS = ("optimize", "cpu_target", "per_channel")
_BNB_OPTIONS = ("skip_modules", "device")


@dataclass(frozen=True)
class QuantizationMethod:
    """One registry entry: the facts callers need, so none of them branches on a method's name.

    `function(SavedModel, output_dir, **defaults, **options, overwrite=...)` of the backend's module
    makes the variant; `defaults` are the options that define the method (bits=4 ...), `options` the
    names a caller may add (validated by `quantize`; the CLI passes only these).
    """

    name: str
    backend: Backend
    function: str
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    options: tuple[str, ...] = ()
    """Keyword options of `function` a caller may pass besides `overwrite` (`check_options`)."""
    device: str = "cpu"
    """Where the loaded variant runs: a fixed torch device, or `BACKEND_DEVICE` when it depends on the
    machine (bitsandbytes: CUDA when available). ONNX Runtime variants are loaded with the
    CPUExecutionProvider and torch-int8 kernels exist for CPU only, hence the "cpu" default."""
    needs_calibration_data: bool = False
    """Static quantization: activation ranges come from `calibration_dataset` (training samples)."""

    @property
    def requires(self) -> tuple[tuple[str, str], ...]:
        """(import name, pip package) pairs the backend needs."""
        return self.backend.requires


_ONNX, _BNB, _TORCH = BACKENDS["onnxruntime"], BACKENDS["bitsandbytes"], BACKENDS["torch"]
METHODS: dict[str, QuantizationMethod] = {
    method.name: method
    for method in (
        QuantizationMethod(
            "onnx-fp32", _ONNX, "export_onnx", "ONNX Runtime, fp32 (runtime baseline)", options=("optimize",)
        ),
        QuantizationMethod(
            "onnx-int8",
            _ONNX,
            "quantize_onnx_dynamic",
            "ONNX Runtime dynamic int8, config from CPU flags",
            options=_ONNX_OPTIONS,
        ),
        QuantizationMethod(
            "onnx-int8-static",
            _ONNX,
            "quantize_onnx_static",
            "ONNX Runtime static int8 (QDQ), calibrated on training samples",
            options=(
                *_ONNX_OPTIONS,
                "calibration_dataset",
                "calibration_samples",
                "calibration_method",
                "seed",
                "operators_to_quantize",
            ),
            needs_calibration_data=True,
        ),
        QuantizationMethod(
            "bnb-8bit",
            _BNB,
            "quantize_bnb",
            "bitsandbytes LLM.int8, head fp32",
            {"bits": 8},
            _BNB_OPTIONS,
            BACKEND_DEVICE,
        ),
        *(
            QuantizationMethod(
                name,
                _BNB,
                "quantize_bnb",
                f"bitsandbytes 4-bit {quant_type.upper()}, head fp32",
                {"bits": 4, "quant_type": quant_type},
                (*_BNB_OPTIONS, "double_quant", "compute_dtype"),
                BACKEND_DEVICE,
            )
            for name, quant_type in (("bnb-4bit", "nf4"), ("bnb-4bit-fp4", "fp4"))
        ),
        QuantizationMethod(
            "torch-int8",
            _TORCH,
            "quantize_torch_dynamic",
            "PyTorch dynamic int8 on nn.Linear, head fp32",
            options=("skip_modules",),
        ),
    )
}


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
    """Import what `method` needs, turning a missing package into an error that says what to install."""
    for module, package in method.requires:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise MissingBackendError(
                method.backend.missing_message(method.name, module, package, error)
            ) from error


def check_options(method: QuantizationMethod, options: Mapping[str, Any]) -> None:
    """Fail, naming the valid ones, when `options` has a name `method`'s backend does not take."""
    unknown = sorted(set(options) - {*method.options, "overwrite"})
    if unknown:
        raise ValueError(
            f"Quantization method {method.name!r} takes no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join((*method.options, 'overwrite'))}."
        )


def parse_methods(methods: str | Iterable[str]) -> list[str]:
    """'onnx-int8,bnb-8bit' or a list -> validated, de-duplicated names.

    Unknown names, then methods whose backend is not installed, fail here: callers parse the methods
    first, so a missing extra is reported before any data is loaded or any model trained.
    """
    names = (
        [name.strip() for name in methods.split(",")]
        if isinstance(methods, str)
        else [str(m) for m in methods]
    )
    names = list(dict.fromkeys(name for name in names if name))
    if not names:
        raise ValueError("No quantization method given.")
    entries = [get_method(name) for name in names]
    for entry in entries:
        require_backend(entry)
    return names


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
        requested = entry.backend.load_module().default_device()
    return normalize_device(str(requested))
