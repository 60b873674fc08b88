"""Offline GLUE and seqeval metrics, as pure functions and as `evaluate` metric modules.

The Hub glue and seqeval metrics fetch their scripts from the Hub at run
time; `offline_metric` returns this package's equivalents (same inputs, same keys) without any network,
so code written for `evaluate` runs on machines that cannot reach the Hub. The module files are also
valid `evaluate.load` script paths (`metric_script_path`).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import evaluate

from hfkdq.metrics.glue import Glue
from hfkdq.metrics.ner import Seqeval

METRIC_MODULES: dict[str, type[evaluate.Metric]] = {"glue": Glue, "seqeval": Seqeval}
"""Metric modules by their Hub name; `offline_metric` and `metric_script_path` accept these keys."""


def offline_metric(name: str, config_name: str | None = None, **init_kwargs: Any) -> evaluate.Metric:
    """The offline module standing in for `evaluate.load(name, config_name, **init_kwargs)`.

    `name` is the Hub metric's name ("glue" with the task as `config_name`, or "seqeval");
    `init_kwargs` are `evaluate.Metric`'s (`keep_in_memory=True` avoids evaluate's cache files).
    """
    return _metric_class(name)(config_name=config_name, **init_kwargs)


def metric_script_path(name: str) -> Path:
    """The file to pass to `evaluate.load(path, config_name)`, for code that only takes a metric path."""
    return Path(inspect.getfile(_metric_class(name)))


def _metric_class(name: str) -> type[evaluate.Metric]:
    if name not in METRIC_MODULES:
        raise ValueError(
            f"No offline metric module named {name!r}; available: {', '.join(METRIC_MODULES)}. "
            "Other metrics need evaluate.load and the Hub."
        )
    return METRIC_MODULES[name]


__all__ = ["METRIC_MODULES", "Glue", "Seqeval", "offline_metric", "metric_script_path"]
