"""Exit statuses and the error handling every entry point shares (`hfkdq ...` and recipes/*.py).

A bad input a user can act on (a ValueError, a missing file or package) is one line naming the
problem, exit status 1; the traceback only with ``--verbose``. A leaf module: it imports nothing of
hfkdq, so both the CLI and the recipe scripts use it without pulling in the rest.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

EXIT_OK = 0
EXIT_ERROR = 1
"""A usage, data or model error: one line, no traceback (argparse's usage errors included, see commands.flags)."""
EXIT_METRIC_DROP = 3
"""A quantized variant lost more metric points than `--max_metric_drop` allows."""

USER_ERRORS = (ValueError, OSError, ImportError)
"""What a user can act on from one line: bad flags, files, models (OSError covers missing/locked files),
a missing optional package."""

VERBOSE_FLAGS = ("-v", "--verbose")


def split_verbose(argv: list[str], flags: tuple[str, ...] = VERBOSE_FLAGS) -> tuple[list[str], bool]:
    """(argv without the verbose flags, whether one was given): ``--verbose`` may stand anywhere."""
    return [flag for flag in argv if flag not in flags], any(flag in flags for flag in argv)


def exit_status(prog: str, run: Callable[[], int], verbose: bool) -> int:
    """`run()`'s exit status; a `USER_ERRORS` error becomes one line on stderr and `EXIT_ERROR`."""
    try:
        return run()
    except USER_ERRORS as error:
        if verbose:
            raise
        print(f"{prog}: error: {error} (rerun with --verbose for the traceback)", file=sys.stderr)
        return EXIT_ERROR


def print_banner(text: str) -> None:
    """A message that must not be missed in a long log (a variant failed the quality gate), framed."""
    banner = "!" * 78
    print(f"\n{banner}\n{text}\n{banner}", file=sys.stderr)
