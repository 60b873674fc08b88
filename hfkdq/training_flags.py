"""`TrainingArguments` flags that transformers 5 renamed, written either way on either major.

transformers 5 folded ``warmup_ratio`` into ``warmup_steps`` (a float below 1 is a ratio) and
``group_by_length`` into ``train_sampling_strategy``. Experiment files and scripts written for one
major should run on the other, so recipe flags are translated to what the installed Trainer takes,
before `HfArgumentParser` sees them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from transformers import TrainingArguments

logger = logging.getLogger(__name__)

_TRUE = {"true", "1", "yes", "y", "t"}


def _fields() -> set[str]:
    return {field.name for field in dataclasses.fields(TrainingArguments)}


def _split(flags: Sequence[str]) -> list[tuple[str, list[str]]]:
    """[(flag, values)] in order; values are the tokens up to the next ``--flag``."""
    pairs: list[tuple[str, list[str]]] = []
    for token in flags:
        if token.startswith("--"):
            pairs.append((token, []))
        elif pairs:
            pairs[-1][1].append(token)
        else:
            pairs.append((token, []))  # a positional token: kept as it is
    return pairs


def _is_ratio(text: str) -> bool:
    try:
        return 0 < float(text) < 1
    except ValueError:
        return False


def portable_training_flags(flags: Sequence[str]) -> list[str]:
    """Rewrite ``--warmup_ratio``/``--warmup_steps <1`` and ``--group_by_length``/``--train_sampling_strategy``
    into the spelling the installed transformers accepts; every other flag passes unchanged."""
    available = _fields()
    result: list[str] = []
    for flag, values in _split(flags):
        name = flag.removeprefix("--")
        value = values[0] if values else None
        if name == "warmup_ratio" and "warmup_ratio" not in available:
            flag = "--warmup_steps"  # transformers 5: a float below 1 is a ratio of the total steps
        elif name == "warmup_steps" and "warmup_ratio" in available and value and _is_ratio(value):
            flag = "--warmup_ratio"  # transformers 4: warmup_steps is an integer
        elif name == "group_by_length" and "group_by_length" not in available:
            if value is None or value.lower() in _TRUE:
                flag, values = "--train_sampling_strategy", ["group_by_length"]
            else:
                continue
        elif name == "train_sampling_strategy" and "train_sampling_strategy" not in available:
            if value == "group_by_length":
                flag, values = "--group_by_length", ["true"]
            elif value in ("random", None):
                continue
            else:
                raise ValueError(
                    f"--train_sampling_strategy {value} needs transformers 5; this transformers offers "
                    "only --group_by_length (or the default random order)"
                )
        if flag.removeprefix("--") != name:
            logger.info("Flag --%s is spelled %s %s on this transformers", name, flag, " ".join(values))
        result.extend([flag, *values])
    return result
