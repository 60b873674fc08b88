"""Errors a user can act on: each message says what was wrong and what to do instead.

They subclass the built-in type a caller would catch anyway (ValueError, ImportError), so code that
does not know about hfkdq still handles them sensibly.
"""

from __future__ import annotations

from hfkdq.model_checks import NotASavedModelError

__all__ = [
    "CalibrationDataError",
    "MetricDropError",
    "MissingBackendError",
    "NotASavedModelError",
    "UnsupportedArchitectureError",
]


class UnsupportedArchitectureError(ValueError):
    """The backend cannot handle this model type (e.g. Optimum has no ONNX export config for it)."""


class MissingBackendError(ImportError):
    """An optional backend (onnxruntime, bitsandbytes, optimum-onnx) is not installed."""


class CalibrationDataError(ValueError):
    """Static quantization was asked for without calibration samples."""


class MetricDropError(RuntimeError):
    """A quantized variant lost more task-metric points than allowed.

    Carries the full `results` dict so a caller can still report everything that was measured.
    """

    def __init__(self, message: str, results: dict) -> None:
        super().__init__(message)
        self.results = results
