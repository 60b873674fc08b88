"""`hfkdq` command line: one argparse subcommand per workflow step, one module per verb.

    hfkdq distill ner recipes/configs/ner_btc_minilm.yaml --output_dir outputs/ner
    hfkdq quantize outputs/student --methods onnx-int8,bnb-8bit,bnb-4bit,torch-int8 \\
        --output_dir outputs/quantized --max_metric_drop 1.0

A verb is a module of `hfkdq.commands` with `HELP`, `EPILOG` (the examples that end its --help),
`add_arguments(parser)` and `run(args) -> int`, the exit status; `VERBS` lists them in --help order.
Exit statuses (`hfkdq.commands.errors`): 0 success, 1 a usage/data/model error, argparse's own
included (one line, no traceback), 3 a variant lost more metric points than `--max_metric_drop`
allows.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from hfkdq.commands import distill, evaluate, prune, push, quantize, report
from hfkdq.commands.errors import exit_status, split_verbose
from hfkdq.commands.flags import OneLineArgumentParser

VERBS: dict[str, ModuleType] = {
    "distill": distill,
    "prune": prune,
    "quantize": quantize,
    "evaluate": evaluate,
    "report": report,
    "push": push,
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="hfkdq", description="Distil and quantize BERT-style encoders.")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log progress (INFO).")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, verb in VERBS.items():
        subparser = subparsers.add_parser(
            name,
            help=verb.HELP,
            description=verb.HELP,
            epilog=verb.EPILOG or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the examples' line breaks
        )
        verb.add_arguments(subparser)
        subparser.set_defaults(run=verb.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hfkdq` console script; returns the exit status.

    A bad input is one line naming the problem and exit status 1; the traceback only with
    ``--verbose``, which may stand before or after the subcommand.
    """
    argv, verbose = split_verbose(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    return exit_status(f"hfkdq {args.command}", lambda: args.run(args), verbose)


if __name__ == "__main__":
    sys.exit(main())
