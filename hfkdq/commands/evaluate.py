"""`hfkdq evaluate`: score one saved model or quantized variant on a data set, on its own.

`hfkdq quantize` scores every variant it makes; this verb scores one directory later, on other data
or another split, with the same three pieces, so a number it prints is comparable with a REPORT.md
row: `load_evaluation_data` (task, files, tokenizer, label alignment), `load_variant` (any backend,
read from the directory's `hfkdq_quantization.json`) and `hfkdq.evaluation.evaluate` (one loop, the
training metric code). Nothing here computes a metric itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hfkdq.commands.errors import EXIT_OK
from hfkdq.commands.flags import existing_path, file_to_write, torch_device, whole_number

HELP = "Evaluate one saved model or quantized variant on a data set, with the training metric code."
EPILOG = """\
Examples:
  # the fp32 student on the embedded BTC dev split (NER is the default for token classifiers)
  hfkdq evaluate outputs/ner-btc-minilm/student

  # its ONNX int8 variant on the BTC test split, metrics also written as JSON
  hfkdq evaluate outputs/ner-btc-minilm/quantized/onnx-int8 --eval_split test --output onnx-int8-test.json

  # an SST-2 student on your own TSV (sentence<TAB>label), first 500 examples
  hfkdq evaluate outputs/glue-sst2/student --task sst2 --eval_file dev.tsv --max_eval_samples 500

  # NER on CoNLL files in a directory (train/dev/test.*), torch int8 variant
  hfkdq evaluate outputs/conll/quantized/torch-int8 --data_dir data/conll2003 --eval_split validation
"""


def add_evaluation_data_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The data flags `evaluate` and `quantize` share: both feed `load_evaluation_data`, so they must
    mean the same thing. Returns the group, for a verb that adds its own (quantize's --train_file)."""
    data = parser.add_argument_group("evaluation data")
    data.add_argument(
        "--task",
        default=None,
        help="'ner' (default for token-classification models) or a GLUE task name (sst2, rte, ...).",
    )
    data.add_argument(
        "--eval_file",
        type=existing_path,
        default=None,
        help="Held-out file (CoNLL for NER, TSV/CSV/JSON for GLUE); with --data_dir it replaces that split.",
    )
    data.add_argument(
        "--data_dir",
        type=existing_path,
        default=None,
        help="Directory with train/dev(validation)/test files; NER default: embedded BTC.",
    )
    data.add_argument(
        "--eval_split", default=None, help="Split to evaluate: validation (default), test, train, ..."
    )
    data.add_argument(
        "--max_eval_samples", type=whole_number(1), default=None, help="Evaluate on the first N examples."
    )
    data.add_argument(
        "--max_seq_length", type=whole_number(2), default=128, help="Truncate evaluation inputs (tokens)."
    )
    return data


def evaluation_data_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `load_evaluation_data` keywords that `add_evaluation_data_arguments`' flags set."""
    names = ("task", "eval_file", "data_dir", "eval_split", "max_eval_samples", "max_seq_length")
    return {name: getattr(args, name) for name in names}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `hfkdq evaluate`; the data flags mean what they mean for `hfkdq quantize`."""
    parser.add_argument(
        "model_dir",
        help="A saved fp32 model (save_pretrained directory with tokenizer) or a variant directory "
        "written by hfkdq quantize (onnx-*, bnb-*, torch-int8).",
    )
    add_evaluation_data_arguments(parser)
    parser.add_argument("--batch_size", type=whole_number(1), default=32, help="Evaluation batch size.")
    parser.add_argument(
        "--device",
        type=torch_device,
        default=None,
        help="cpu, cuda, cuda:1 ... (default: where the variant's method runs; fp32 on CPU). "
        "ONNX Runtime and torch-int8 variants always run on the CPU.",
    )
    parser.add_argument(
        "--output", type=file_to_write, default=None, help="Also write the metrics to this JSON file."
    )


def evaluate_saved_model(
    model_dir: str | Path,
    task: str | None = None,
    *,
    eval_file: str | None = None,
    data_dir: str | None = None,
    eval_split: str | None = None,
    max_eval_samples: int | None = None,
    max_seq_length: int = 128,
    batch_size: int = 32,
    device: str | None = None,
) -> dict[str, Any]:
    """Evaluate the model or variant in `model_dir`; return a JSON-safe record (metrics, split, device).

    `metrics` is ordered with the task's main metric first, since that is the number a reader compares.
    A run directory (or a model in one) without data flags is scored on the data its results.json records.
    """
    from hfkdq.evaluation import evaluate, runtime_device
    from hfkdq.quantization import load_variant, method_device
    from hfkdq.quantization.artifacts import read_metadata
    from hfkdq.run_record import model_dir_of
    from hfkdq.tasks.evaluation_data import load_evaluation_data

    model_dir = model_dir_of(model_dir)
    method = read_metadata(model_dir).get("method", "fp32") if Path(model_dir).is_dir() else "fp32"
    data = load_evaluation_data(
        model_dir,
        task,
        eval_file=eval_file,
        data_dir=data_dir,
        eval_split=eval_split,
        max_eval_samples=max_eval_samples,
        max_seq_length=max_seq_length,
        include_train=False,
        allow_variants=True,
    )
    if data.run is not None:
        print(data.run.describe(data.eval_split))
    if device is None and method != "fp32":
        device = method_device(method)
    model = load_variant(model_dir, device)
    result = evaluate(model, data.eval_dataset, data.data_collator, data.compute_metrics, batch_size)
    main_metric = data.task.main_metric if data.task.main_metric in result.metrics else None
    if main_metric is None:
        from hfkdq.quantization.workflow import choose_main_metric

        main_metric = choose_main_metric(result.metrics)
    metrics = {main_metric: result.metrics[main_metric], **result.metrics}
    return {
        "model_dir": str(model_dir),
        "method": method,
        "task": data.task_name,
        "eval_split": data.eval_split,
        "eval_examples": len(data.eval_dataset),
        "device": runtime_device(model),
        "main_metric": main_metric,
        "metrics": metrics,
        "eval_seconds": result.seconds,
    }


def format_evaluation(record: dict[str, Any]) -> str:
    """The lines `hfkdq evaluate` prints: what was scored on what, then one metric per line."""
    width = max(len(name) for name in record["metrics"])
    lines = [
        f"{record['model_dir']} ({record['method']}, {record['device']}) on {record['task']} "
        f"{record['eval_split']}: {record['eval_examples']} examples, {record['eval_seconds']:.1f} s",
    ]
    lines += [f"  {name:<{width}}  {value:.4f}" for name, value in record["metrics"].items()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the metrics (main metric first), and write them as JSON with `--output`."""
    from hfkdq.outputs import write_json_atomically

    record = evaluate_saved_model(
        args.model_dir, **evaluation_data_options(args), batch_size=args.batch_size, device=args.device
    )
    print(format_evaluation(record))
    if args.output:
        print(f"\nWrote {write_json_atomically(args.output, record)}")
    return EXIT_OK
