"""`hfkdq quantize`: quantize a saved student with several methods, evaluate and benchmark every variant.

The work is `hfkdq.quantization.workflow.quantize_and_evaluate`; this module maps flags onto it.
"""

from __future__ import annotations

import argparse

from hfkdq.commands.errors import EXIT_METRIC_DROP, EXIT_OK, print_banner
from hfkdq.commands.evaluate import add_evaluation_data_arguments, evaluation_data_options
from hfkdq.commands.flags import directory_to_write, existing_path, finite_number, whole_number
from hfkdq.quantization.onnx import CPU_TARGETS

HELP = "Quantize a saved student with several methods, evaluate and benchmark every variant."
DEFAULT_METHODS = "onnx-int8,bnb-8bit,bnb-4bit,torch-int8"


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


EPILOG = """\
Examples:
  # every default method on the embedded BTC dev split; fail (exit 3) if a variant loses > 2 F1 points
  hfkdq quantize outputs/ner-btc-minilm/student --output_dir outputs/ner-btc-minilm/quantized \\
      --methods onnx-int8,bnb-8bit,bnb-4bit,torch-int8 --max_metric_drop 2

  # static ONNX int8 calibrated on 200 training sentences of your CoNLL files, teacher as a reference row
  hfkdq quantize outputs/conll/student --output_dir outputs/conll/quantized --methods onnx-int8-static \\
      --data_dir data/conll2003 --calibration_samples 200 --teacher_dir outputs/conll/teacher

  # ONNX int8 within 0.1 F1 point: if full int8 misses, keep the most sensitive MatMuls in fp32
  hfkdq quantize outputs/conll/student --output_dir outputs/conll/quantized --methods onnx-int8 \\
      --data_dir data/conll2003 --max_metric_drop 0.1 --mixed_precision

  # an SST-2 student, torch int8 only, on a GLUE dev TSV
  hfkdq quantize outputs/glue-sst2/student --task sst2 --eval_file dev.tsv --methods torch-int8 \\
      --output_dir outputs/glue-sst2/quantized
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hfkdq.quantization import available_methods

    parser.add_argument("model_dir", help="Saved fp32 student (save_pretrained directory with tokenizer).")
    parser.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        help=f"Comma-separated methods (default: {DEFAULT_METHODS}). Available: {', '.join(available_methods())} "
        f"({_extras_note()}).",
    )
    parser.add_argument(
        "--output_dir",
        type=directory_to_write,
        required=True,
        help="Gets one directory per method + results/report/plot.",
    )
    data = add_evaluation_data_arguments(parser)
    data.add_argument(
        "--train_file",
        type=existing_path,
        default=None,
        help="Training file: calibration samples for static int8.",
    )
    parser.add_argument(
        "--max_metric_drop",
        type=finite_number(0),
        default=None,
        help="Fail (exit 3) when a variant loses more than this many metric points (x100) vs the fp32 student.",
    )
    parser.add_argument(
        "--mixed_precision",
        action="store_true",
        help="With --max_metric_drop and onnx-int8: when full int8 misses the budget, search onnx-int8-mixed, which "
        "keeps the MatMuls int8 hurts most in fp32 until the drop fits (fails if even fp32 cannot).",
    )
    parser.add_argument(
        "--teacher_dir",
        type=existing_path,
        default=None,
        help="Also evaluate this fp32 teacher, for reference.",
    )
    onnx = parser.add_argument_group("ONNX Runtime")
    onnx.add_argument(
        "--calibration_samples",
        type=whole_number(1),
        default=100,
        help="Static int8: training samples to use.",
    )
    onnx.add_argument(
        "--cpu_target",
        choices=CPU_TARGETS,
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
    bench.add_argument("--batch_size", type=whole_number(1), default=32, help="Evaluation batch size.")
    bench.add_argument("--latency_seq_len", type=whole_number(2), default=128)
    bench.add_argument(
        "--latency_repeats",
        type=whole_number(0),
        default=20,
        help="Timed runs per batch size (0: skip latency).",
    )
    bench.add_argument("--latency_warmup", type=whole_number(0), default=3)
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


def run(args: argparse.Namespace) -> int:
    """Quantize with every method, evaluate each on the task's held-out split, report, gate on the drop."""
    from hfkdq.quantization import get_method, parse_methods
    from hfkdq.quantization.errors import MetricDropError
    from hfkdq.quantization.workflow import quantize_and_evaluate, summary_table
    from hfkdq.run_record import model_dir_of
    from hfkdq.tasks.evaluation_data import load_evaluation_data

    methods = parse_methods(args.methods)
    model_dir = model_dir_of(args.model_dir)  # a run directory stands for its student
    data = load_evaluation_data(
        model_dir,
        **evaluation_data_options(args),
        train_file=args.train_file,
        include_train=any(get_method(method).needs_calibration_data for method in methods),
    )
    method_options = {method: _method_options(args, method) for method in methods}
    teacher_dir = args.teacher_dir
    if data.run is not None:
        print(data.run.describe(data.eval_split))
        teacher_dir = teacher_dir or data.run.teacher_dir
    try:
        results = quantize_and_evaluate(
            model_dir,
            methods,
            args.output_dir,
            data.eval_dataset,
            data.data_collator,
            data.compute_metrics,
            calibration_dataset=data.calibration_dataset,
            max_metric_drop=args.max_metric_drop,
            teacher_dir=teacher_dir,
            main_metric=data.task.main_metric,
            method_options=method_options,
            batch_size=args.batch_size,
            latency_seq_len=args.latency_seq_len,
            latency_repeats=args.latency_repeats,
            latency_warmup=args.latency_warmup,
            overwrite=args.overwrite,
            mixed_precision=args.mixed_precision,
        )
    except MetricDropError as error:
        print(summary_table(error.results))
        print_banner(str(error))
        return EXIT_METRIC_DROP
    print(summary_table(results))
    print(f"\nWrote {', '.join(results['files'].values())}")
    return EXIT_OK
