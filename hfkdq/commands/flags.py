"""Flag types that check their range, and a parser whose usage errors are one line and exit status 1.

argparse's ``type=int`` takes ``--batch_size 0`` and ``--max_metric_drop nan``; the work then fails
late or, worse, not at all. Each numeric flag of `hfkdq` declares its range here instead, so a bad
value is refused at parsing with the flag's name and what it must be.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from hfkdq.commands.errors import EXIT_ERROR


class OneLineArgumentParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line on stderr and `EXIT_ERROR`, like every other bad input."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_ERROR)


def whole_number(minimum: int) -> Callable[[str], int]:
    """A ``type=`` for a count: a whole number >= `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    parse.minimum = minimum  # type: ignore[attr-defined]
    return parse


def finite_number(minimum: float) -> Callable[[str], float]:
    """A ``type=`` for a threshold: a finite number >= `minimum` (NaN would make every comparison false)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a finite number >= {minimum:g}, got {text!r}")
        return value

    parse.__name__ = f"finite number >= {minimum:g}"
    parse.minimum = minimum  # type: ignore[attr-defined]
    return parse


def existing_path(text: str) -> str:
    """A ``type=`` for a file or directory to read: it exists (checked at parsing, even when the methods
    chosen would not read it, so a typo is never silently ignored)."""
    if not Path(text).expanduser().exists():
        raise argparse.ArgumentTypeError(f"no such file or directory: {text!r}")
    return text


def directory_to_write(text: str) -> str:
    """A ``type=`` for an output directory: new, or a directory (never a file)."""
    if Path(text).expanduser().exists() and not Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file, not a directory: choose another directory")
    return text


def file_to_write(text: str) -> str:
    """A ``type=`` for an output file: new, or a file (never a directory)."""
    if Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r} is a directory: name a file, e.g. {text.rstrip('/')}/metrics.json"
        )
    return text


def torch_device(text: str) -> str:
    """A ``type=`` for ``--device``: a device torch knows (cpu, cuda, cuda:1, mps ...)."""
    import torch

    try:
        torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a torch device: use cpu, cuda, cuda:1, mps ..."
        ) from None
    return text
