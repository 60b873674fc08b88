"""The `hfkdq` console script (`hfkdq.commands.main`), kept under its old name: `python -m hfkdq.cli`
and ``from hfkdq.cli import main`` (the notebook) keep working."""

from __future__ import annotations

import sys

from hfkdq.commands.main import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
