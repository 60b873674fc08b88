"""Recipe arguments from a YAML (or JSON) experiment file, command-line flags, or both (flags win).

One experiment = one YAML file (torchdistill's habit), while every key stays an ordinary
`HfArgumentParser` flag, so `--learning_rate 3e-5` overrides the file without editing it. Every problem
with the file or the flags is a `ValueError` with one line naming the key or flag and the fix.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from transformers import HfArgumentParser
from transformers.hf_argparser import string_to_bool

from hfkdq.training_flags import portable_training_flags

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
NUMBER_LIST = re.compile(r"-\d+(\.\d+)?(,\s*-?\d+(\.\d+)?)*")
"""A value such as ``-1`` or ``-1,3,5``, which argparse would take for an option."""


class RecipeArgumentParser(HfArgumentParser):
    """`HfArgumentParser` whose usage errors are a `ValueError` (one line, exit status 1 in the recipes)
    instead of argparse's usage text and exit status 2."""

    def error(self, message: str):
        raise ValueError(f"{message} (see --help)")


def read_config(path: str | Path) -> dict:
    """The mapping of a YAML or JSON experiment file; another kind of file is refused by name."""
    path = Path(path)
    if path.suffix not in CONFIG_SUFFIXES:
        raise ValueError(
            f"{path}: an experiment file must be YAML (.yaml, .yml) or JSON (.json); flags go after it as --name value"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such experiment file")
    text = path.read_text(encoding="utf-8")
    try:
        config = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        where = getattr(error, "problem_mark", None) or getattr(error, "lineno", None)
        raise ValueError(f"{path}: not valid {path.suffix[1:].upper()} ({where or error})") from None
    config = config or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: an experiment file must be a mapping of argument names to values")
    return config


def yaml_to_flags(path: str | Path, parser: HfArgumentParser | None = None) -> list[str]:
    """Turn a flat YAML/JSON mapping into ``--key value`` flags (lists become repeated values).

    With the `parser`, a boolean given to a flag that is not boolean is refused: YAML reads the unquoted
    words yes/no/on/off/true/false as booleans, so ``student_layers: no`` would become the text "False".
    """
    booleans = _boolean_flags(parser) if parser is not None else None
    flags: list[str] = []
    for key, value in read_config(path).items():
        if value is None:
            continue
        if isinstance(value, bool) and booleans is not None and key in booleans and not booleans[key]:
            raise ValueError(
                f"{path}: {key}: the value was read as the boolean {value} (YAML reads unquoted yes/no/on/off/"
                f"true/false as booleans), but {key} takes text: quote it, e.g. {key}: 'no'"
            )
        flags.append(f"--{key}")
        if isinstance(value, (list, tuple)):
            flags.extend(str(item) for item in value)
        else:
            flags.append(str(value))
    return flags


def _boolean_flags(parser: HfArgumentParser) -> dict[str, bool]:
    """Each option's name (without --) -> whether it takes a boolean."""
    return {
        option.lstrip("-"): action.type is string_to_bool or action.const is True
        for action in parser._actions
        for option in action.option_strings
    }


def join_negative_values(argv: list[str], parser: HfArgumentParser) -> list[str]:
    """``--flag -1,3,5`` -> ``--flag=-1,3,5``: argparse reads a value that starts with '-' and is not a
    plain number as the next option, and fails with "expected one argument"."""
    takes_value = {
        option for action in parser._actions if action.nargs != 0 for option in action.option_strings
    }
    joined: list[str] = []
    for item in argv:
        if joined and joined[-1] in takes_value and NUMBER_LIST.fullmatch(item):
            joined[-1] = f"{joined[-1]}={item}"
        else:
            joined.append(item)
    return joined


def parse_recipe_args(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple:
    """Parse ``[config.yaml|config.json] [--flag value ...]`` into the given dataclasses; unknown keys are errors."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = RecipeArgumentParser(dataclass_types)
    flags: list[str] = []
    if argv and not argv[0].startswith("-"):
        flags = yaml_to_flags(argv.pop(0), parser)
    arguments = join_negative_values(portable_training_flags(flags + argv), parser)
    return parser.parse_args_into_dataclasses(args=arguments)
