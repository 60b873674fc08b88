"""`hfkdq` command line: one argparse subcommand per workflow step.

    hfkdq distill ner recipes/configs/ner_btc_minilm.yaml --output_dir outputs/ner
    hfkdq quantize outputs/student --methods onnx-int8,bnb-8bit,bnb-4bit,torch-int8 \\
        --output_dir outputs/quantized --max_metric_drop 1.0

A subcommand is a `(name, help, add_arguments, run, epilog)` entry in `SUBCOMMANDS`; `run(args) -> int`
is the exit status, and `epilog` holds the examples that end its --help. Exit statuses: 0 success, 1 a usage/data/model error (message, no traceback),
2 argparse's own usage errors, 3 a variant lost more metric points than `--max_metric_drop` allows.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hfkdq.commands_evaluate import EPILOG as EVALUATE_EPILOG
from hfkdq.commands_evaluate import (
    add_evaluate_arguments,
    add_evaluation_data_arguments,
    evaluation_data_options,
    run_evaluate,
)
from hfkdq.commands_report import EPILOG as REPORT_EPILOG
from hfkdq.commands_report import add_report_arguments, run_report
from hfkdq.hub import add_push_arguments, run_push

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_METRIC_DROP = 3
DEFAULT_METHODS = "onnx-int8,bnb-8bit,bnb-4bit,torch-int8"


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str = ""
    """Shown at the end of `--help`, verbatim: real command lines a user can copy ("Examples:")."""


def _extras_note() -> str:
    """Which methods need an optional extra installed, e.g. "onnx-fp32, onnx-int8 need pip install 'hfkdq[onnx]'"."""
    from hfkdq.quantization import METHODS

    by_extra: dict[str, list[str]] = {}
    for method in METHODS.values():
        if method.backend.extra:
            by_extra.setdefault(method.backend.extra, []).append(method.name)
    return "; ".join(
        f"{', '.join(names)} need pip install 'hfkdq[{extra}]'" for extra, names in by_extra.items()
    )


QUANTIZE_EPILOG = """\
Examples:
  # every default method on the embedded BTC dev split; fail (exit 3) if a variant loses > 2 F1 points
  hfkdq quantize outputs/ner-btc-minilm/student --output_dir outputs/ner-btc-minilm/quantized \\
      --methods onnx-int8,bnb-8bit,bnb-4bit,torch-int8 --max_metric_drop 2

  # static ONNX int8 calibrated on 200 training sentences of your CoNLL files, teacher as a reference row
  hfkdq quantize outputs/conll/student --output_dir outputs/conll/quantized --methods onnx-int8-static \\
      --data_dir data/conll2003 --calibration_samples 200 --teacher_dir outputs/conll/teacher

  # an SST-2 student, torch int8 only, on a GLUE dev TSV
  hfkdq quantize outputs/glue-sst2/student --task sst2 --eval_file dev.tsv --methods torch-int8 \\
      --output_dir outputs/glue-sst2/quantized
"""


def _add_quantize_arguments(parser: argparse.ArgumentParser) -> None:
    from hfkdq.quantization import available_methods

    parser.add_argument("model_dir", help="Saved fp32 student (save_pretrained directory with tokenizer).")
    parser.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        help=f"Comma-separated methods (default: {DEFAULT_METHODS}). Available: {', '.join(available_methods())} "
        f"({_extras_note()}).",
    )
    parser.add_argument(
        "--output_dir", required=True, help="Gets one directory per method + results/report/plot."
    )
    data = add_evaluation_data_arguments(parser)
    data.add_argument(
        "--train_file", default=None, help="Training file: calibration samples for static int8."
    )
    parser.add_argument(
        "--max_metric_drop",
        type=float,
        default=None,
        help="Fail (exit 3) when a variant loses more than this many metric points (x100) vs the fp32 student.",
    )
    parser.add_argument("--teacher_dir", default=None, help="Also evaluate this fp32 teacher, for reference.")
    onnx = parser.add_argument_group("ONNX Runtime")
    onnx.add_argument(
        "--calibration_samples", type=int, default=100, help="Static int8: training samples to use."
    )
    onnx.add_argument(
        "--cpu_target",
        default=None,
        help="avx512_vnni, avx512, avx2 or arm64 (default: detected from CPU flags).",
    )
    onnx.add_argument(
        "--per_channel",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Per-channel weight scales (default: on for dynamic, off for static).",
    )
    onnx.add_argument(
        "--optimize",
        type=int,
        choices=(0, 1, 2, 99),
        default=0,
        help="ORT graph optimisation level (0: none).",
    )
    bench = parser.add_argument_group("measurement")
    bench.add_argument("--batch_size", type=int, default=32, help="Evaluation batch size.")
    bench.add_argument("--latency_seq_len", type=int, default=128)
    bench.add_argument(
        "--latency_repeats", type=int, default=20, help="Timed runs per batch size (0: skip latency)."
    )
    bench.add_argument("--latency_warmup", type=int, default=3)
    parser.add_argument("--overwrite", action="store_true", help="Replace existing variant directories.")


def _method_options(args: argparse.Namespace, method: str) -> dict:
    """The backend options given on the command line that `method` takes (its registry entry's `options`)."""
    from hfkdq.quantization import get_method

    given = {
        "optimize": args.optimize or False,
        "cpu_target": args.cpu_target,
        "per_channel": args.per_channel,
        "calibration_samples": args.calibration_samples,
    }
    accepted = get_method(method).options
    return {name: value for name, value in given.items() if name in accepted and value is not None}


def run_quantize(args: argparse.Namespace) -> int:
    """Quantize with every method, evaluate each on the task's held-out split, report, gate on the drop."""
    from hfkdq.quantization import get_method, parse_methods
    from hfkdq.quantization.errors import MetricDropError
    from hfkdq.quantization.workflow import quantize_and_evaluate, summary_table
    from hfkdq.tasks.evaluation_data import load_evaluation_data

    methods = parse_methods(args.methods)
    data = load_evaluation_data(
        args.model_dir,
        **evaluation_data_options(args),
        train_file=args.train_file,
        include_train=any(get_method(method).needs_calibration_data for method in methods),
    )
    method_options = {method: _method_options(args, method) for method in methods}
    try:
        results = quantize_and_evaluate(
            args.model_dir,
            methods,
            args.output_dir,
            data.eval_dataset,
            data.data_collator,
            data.compute_metrics,
            calibration_dataset=data.calibration_dataset,
            max_metric_drop=args.max_metric_drop,
            teacher_dir=args.teacher_dir,
            main_metric=data.task.main_metric,
            method_options=method_options,
            batch_size=args.batch_size,
            latency_seq_len=args.latency_seq_len,
            latency_repeats=args.latency_repeats,
            latency_warmup=args.latency_warmup,
            overwrite=args.overwrite,
        )
    except MetricDropError as error:
        print(summary_table(error.results))
        banner = "!" * 78
        print(f"\n{banner}\n{error}\n{banner}", file=sys.stderr)
        return EXIT_METRIC_DROP
    print(summary_table(results))
    print(f"\nWrote {', '.join(results['files'].values())}")
    return EXIT_OK


DISTILL_EPILOG = """\
Examples:
  # the default experiment: MiniLM teacher fine-tuned on the embedded BTC, 3-layer student
  hfkdq distill ner recipes/configs/ner_btc_minilm.yaml --output_dir outputs/ner-btc-minilm

  # your own CoNLL files, a teacher fine-tuned earlier, and quantized variants at the end
  hfkdq distill ner recipes/configs/ner_btc_minilm.yaml --train_file train.conll \\
      --validation_file dev.conll --teacher_name_or_path outputs/teacher --quantize onnx-int8,torch-int8

  # GLUE SST-2 from its TSV files
  hfkdq distill glue recipes/configs/glue_sst2_minilm.yaml --output_dir outputs/glue-sst2

Every flag of recipes/distill_bert_<task>.py works here: `hfkdq distill ner --help` lists them.
"""


def _add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=("ner", "glue"), help="Which recipe: NER (CoNLL) or GLUE.")
    parser.add_argument(
        "recipe_args",
        nargs=argparse.REMAINDER,
        help="[config.yaml] [--flag value ...]: exactly the flags of recipes/distill_bert_<task>.py.",
    )


def run_distill(args: argparse.Namespace) -> int:
    """The recipes as a subcommand, so an installed package distills without a checkout of recipes/."""
    from hfkdq.pipeline import run_recipe

    if args.task == "ner":
        from hfkdq.tasks.ner import NerDataArguments as data_arguments
        from hfkdq.tasks.ner import build_ner_task as build_task
    else:
        from hfkdq.tasks.glue import GlueDataArguments as data_arguments
        from hfkdq.tasks.glue import build_glue_task as build_task
    run_recipe(data_arguments, build_task, list(args.recipe_args))
    return EXIT_OK


SUBCOMMANDS: list[Subcommand] = [
    Subcommand(
        "distill",
        "Fine-tune or load a teacher, distill a student, evaluate both (the NER or GLUE recipe).",
        _add_distill_arguments,
        run_distill,
        DISTILL_EPILOG,
    ),
    Subcommand(
        "quantize",
        "Quantize a saved student with several methods, evaluate and benchmark every variant.",
        _add_quantize_arguments,
        run_quantize,
        QUANTIZE_EPILOG,
    ),
    Subcommand(
        "evaluate",
        "Evaluate one saved model or quantized variant on a data set, with the training metric code.",
        add_evaluate_arguments,
        run_evaluate,
        EVALUATE_EPILOG,
    ),
    Subcommand(
        "report",
        "Render REPORT.md and pareto.png again from one or more quantization results.json files.",
        add_report_arguments,
        run_report,
        REPORT_EPILOG,
    ),
    Subcommand(
        "push",
        "Publish a run to the Hugging Face Hub: student on main, each variant on its own branch, model card, "
        "quality gate.",
        add_push_arguments,
        run_push,
    ),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfkdq", description="Distil and quantize BERT-style encoders.")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log progress (INFO).")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in SUBCOMMANDS:
        subparser = subparsers.add_parser(
            command.name,
            help=command.help,
            description=command.help,
            epilog=command.epilog or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the examples' line breaks
        )
        command.add_arguments(subparser)
        subparser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hfkdq` console script; returns the exit status.

    A bad input is one line naming the problem and exit status 1; the traceback only with
    ``--verbose``, which may stand before or after the subcommand.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = any(flag in ("-v", "--verbose") for flag in argv)
    args = build_parser().parse_args([flag for flag in argv if flag not in ("-v", "--verbose")])
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        return args.run(args)
    except (ValueError, ImportError, OSError) as error:
        if verbose:
            raise
        print(
            f"hfkdq {args.command}: error: {error} (rerun with --verbose for the traceback)", file=sys.stderr
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
