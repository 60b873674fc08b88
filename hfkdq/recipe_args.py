"""Recipe arguments from a YAML experiment file, command-line flags, or both (flags win).

One experiment = one YAML file (torchdistill's habit), while every key stays an ordinary
`HfArgumentParser` flag, so `--learning_rate 3e-5` overrides the file without editing it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from transformers import HfArgumentParser

from hfkdq.training_flags import portable_training_flags


def yaml_to_flags(path: str | Path) -> list[str]:
    """Turn a flat YAML mapping into ``--key value`` flags (lists become repeated values)."""
    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: an experiment file must be a mapping of argument names to values")
    flags: list[str] = []
    for key, value in config.items():
        if value is None:
            continue
        flags.append(f"--{key}")
        if isinstance(value, (list, tuple)):
            flags.extend(str(item) for item in value)
        else:
            flags.append(str(value))
    return flags


def parse_recipe_args(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple:
    """Parse ``[config.yaml] [--flag value ...]`` into the given dataclasses; unknown keys are errors."""
    argv = list(sys.argv[1:] if argv is None else argv)
    flags: list[str] = []
    if argv and argv[0].endswith((".yaml", ".yml")):
        flags = yaml_to_flags(argv.pop(0))
    parser = HfArgumentParser(dataclass_types)
    return parser.parse_args_into_dataclasses(args=portable_training_flags(flags + argv))
