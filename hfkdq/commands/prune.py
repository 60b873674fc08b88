"""`hfkdq prune`: cut every layer's FFN of a saved student (or a run's student) to a share of its neurons,
recover it by distillation from its teacher, and save a stock model that `from_pretrained` loads.

The work is `hfkdq.pruning` (importance, cut) and `hfkdq.pruning.recovery` (distillation); this module
finds the model, the teacher and the data, and refuses what cannot be pruned before any work.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from hfkdq.commands.errors import EXIT_OK
from hfkdq.commands.evaluate import add_evaluation_data_arguments, evaluation_data_options
from hfkdq.commands.flags import directory_to_write, existing_path, finite_number, whole_number

logger = logging.getLogger(__name__)

HELP = "Prune every layer's FFN to a share of its neurons (Taylor importance), recover by distillation."
PRUNING_RECORD = "pruning.json"

EPILOG = """\
Examples:
  # a recipe run: its student, pruned to half the FFN neurons, recovered from its teacher for 2 epochs
  hfkdq prune outputs/conll --ffn_keep 0.5 --output_dir outputs/conll-pruned --data_dir data/conll2003 \\
      --recovery_epochs 2

  # a bare student, pruned only (no teacher given: no recovery), scored on 256 training sentences
  hfkdq prune outputs/conll/student --ffn_keep 0.75 --output_dir pruned --data_dir data/conll2003 \\
      --importance_samples 256

A pruned student is a stock model: quantize it like any other (hfkdq quantize outputs/conll-pruned ...).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hfkdq.pruning import IMPORTANCE_METHODS

    parser.add_argument(
        "model_or_run",
        help="A saved fp32 student (save_pretrained directory), or a recipe's output directory (its student/, "
        "teacher and teacher cache are used).",
    )
    parser.add_argument(
        "--ffn_keep", required=True, help="Share of every layer's FFN neurons to keep, in (0, 1], e.g. 0.5."
    )
    parser.add_argument(
        "--output_dir",
        type=directory_to_write,
        required=True,
        help="Gets the pruned model, its tokenizer and pruning.json.",
    )
    parser.add_argument(
        "--importance",
        default="taylor",
        choices=tuple(IMPORTANCE_METHODS),
        help="How neurons are scored: " + "; ".join(f"{k}: {v}" for k, v in IMPORTANCE_METHODS.items()),
    )
    parser.add_argument(
        "--importance_samples", type=whole_number(1), default=512, help="Training examples scored."
    )
    data = add_evaluation_data_arguments(parser)
    data.add_argument(
        "--train_file",
        type=existing_path,
        default=None,
        help="Training file: importance scores and recovery.",
    )
    data.add_argument(
        "--max_train_samples", type=whole_number(1), default=None, help="Use the first N training examples."
    )
    recovery = parser.add_argument_group("recovery (distillation from the teacher)")
    recovery.add_argument(
        "--teacher_dir",
        type=existing_path,
        default=None,
        help="The teacher to recover from (default: the run's teacher).",
    )
    recovery.add_argument(
        "--recovery_epochs",
        type=finite_number(0),
        default=None,
        help="Epochs of recovery (default: 2 with a teacher; 0: none).",
    )
    recovery.add_argument("--learning_rate", type=finite_number(0), default=1e-4)
    recovery.add_argument(
        "--batch_size", type=whole_number(1), default=16, help="Training and evaluation batch size."
    )
    recovery.add_argument("--seed", type=whole_number(0), default=42)
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing --output_dir.")


def resolve_source(path: str | Path) -> dict[str, Any]:
    """The student to prune, and the run around it (teacher, cache, distillation settings) when there is one.

    Refuses, naming the fix, what pruning cannot take: an ONNX file or directory, a quantized variant.
    """
    from hfkdq.layout import METADATA_FILE, RESULTS_FILE, STUDENT_DIR, TEACHER_CACHE_DIR, TEACHER_DIR
    from hfkdq.quantization.artifacts import inspect_model_dir, read_metadata

    path = Path(path)
    if path.suffix == ".onnx" or (path.is_dir() and (path / "model.onnx").is_file()):
        raise ValueError(
            f"{path} is an ONNX model: pruning changes PyTorch weights, so prune the fp32 student it was exported "
            "from (its save_pretrained directory) and export or quantize the pruned one"
        )
    if path.is_dir() and (path / METADATA_FILE).is_file():
        method = read_metadata(path).get("method", "?")
        raise ValueError(
            f"{path} is a quantized variant ({method}): prune the fp32 student it was made from, then quantize "
            "the pruned one"
        )
    source: dict[str, Any] = {"run": None, "teacher": None, "cache": None, "distillation": {}}
    if path.is_dir() and (path / STUDENT_DIR).is_dir() and (path / RESULTS_FILE).is_file():
        results = json.loads((path / RESULTS_FILE).read_text())
        source["run"] = path
        teacher = path / TEACHER_DIR
        source["teacher"] = (
            teacher if (teacher / "config.json").is_file() else results.get("teacher", {}).get("name_or_path")
        )
        if (path / TEACHER_CACHE_DIR).is_dir():
            source["cache"] = path / TEACHER_CACHE_DIR
        source["distillation"] = results.get("distillation") or {}
        path = path / STUDENT_DIR
    source["model"] = inspect_model_dir(path)
    return source


def _cache_for(cache_dir: Path | None, teacher: Any, train_dataset: Any):
    """The run's teacher cache when it was built for exactly this teacher and training set, else None."""
    from hfkdq.teacher_cache import StaleTeacherCacheError, TeacherOutputCache

    if cache_dir is None:
        return None
    try:
        cache = TeacherOutputCache.load(cache_dir)
        cache.check(teacher, train_dataset)
    except (StaleTeacherCacheError, FileNotFoundError) as error:
        logger.warning("Recovering with the live teacher: the run's cache does not fit (%s).", error)
        return None
    return cache


def run(args: argparse.Namespace) -> int:
    """Check everything, score, cut, recover, evaluate before/after, save atomically."""
    from hfkdq.evaluation import evaluate
    from hfkdq.outputs import atomic_output_dir, check_output_dir
    from hfkdq.pruning import check_ffn_keep, neurons_to_keep, prune_model
    from hfkdq.pruning.ffn import intermediate_size_key
    from hfkdq.quantization.artifacts import save_tokenizer
    from hfkdq.tasks.evaluation_data import load_evaluation_data

    keep = check_ffn_keep(args.ffn_keep)
    source = resolve_source(args.model_or_run)
    model = source["model"]
    neurons_to_keep(keep, getattr(model.config, intermediate_size_key(model.config)))
    output_dir = check_output_dir(args.output_dir, args.overwrite)
    teacher_path = args.teacher_dir or source["teacher"]
    epochs = args.recovery_epochs if args.recovery_epochs is not None else (2.0 if teacher_path else 0.0)
    if (
        epochs < 0
        or args.importance_samples < 1
        or (args.max_train_samples is not None and args.max_train_samples < 1)
    ):
        raise ValueError("--recovery_epochs must be >= 0, --importance_samples and --max_train_samples >= 1")
    if epochs > 0 and not teacher_path:
        raise ValueError(
            f"--recovery_epochs {epochs:g} needs a teacher: pass --teacher_dir, or prune a recipe run directory"
        )
    data = load_evaluation_data(model.path, **evaluation_data_options(args), train_file=args.train_file)
    train = data.task.features.get("train")
    if train is None and (args.importance != "magnitude" or epochs > 0):
        raise ValueError(
            "pruning scores neurons (and recovers) on labelled training examples: pass --train_file or a "
            "--data_dir with a train file (or --importance magnitude without recovery)"
        )
    if train is not None and args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))

    def score(network) -> float:
        result = evaluate(
            network, data.eval_dataset, data.data_collator, data.compute_metrics, args.batch_size
        )
        return result.metrics[data.task.main_metric]

    student = model.auto_class().from_pretrained(model.path).eval()
    record: dict[str, Any] = {
        "source": str(model.path),
        "eval_split": data.eval_split,
        "metric": data.task.main_metric,
    }
    record["metric_before"] = score(student)
    pruning = prune_model(
        student,
        keep,
        train,
        data.data_collator,
        importance=args.importance,
        max_samples=args.importance_samples,
        seed=args.seed,
    )
    record |= pruning
    record["metric_pruned"] = score(student)
    record["recovery"] = None
    if epochs > 0:
        record["recovery"] = _recover(student, teacher_path, source, train, data, epochs, args, output_dir)
        record["metric_recovered"] = score(student)
    with atomic_output_dir(output_dir, args.overwrite) as staging:
        student.save_pretrained(staging)
        save_tokenizer(model.path, staging)
        (staging / PRUNING_RECORD).write_text(json.dumps(record, indent=1, default=str) + "\n")
    metric = data.task.main_metric
    print(
        f"FFN width {pruning['original_width']} -> {pruning['width']} in every layer ({args.importance} importance)"
    )
    print(
        f"{metric} on {data.eval_split}: before {record['metric_before']:.4f}, pruned {record['metric_pruned']:.4f}",
        end="",
    )
    print(f", recovered {record['metric_recovered']:.4f}" if epochs > 0 else " (not recovered)")
    print(f"Wrote {output_dir}")
    return EXIT_OK


def _recover(student, teacher_path, source, train, data, epochs, args, output_dir) -> dict[str, Any]:
    """Distil the pruned student from the teacher (its run's cache when it fits); the settings of the run."""
    import tempfile

    from hfkdq.config import DistillationArguments
    from hfkdq.pruning.recovery import recover
    from hfkdq.resources import resolve_model_name_or_path

    teacher = (
        source["model"].auto_class().from_pretrained(resolve_model_name_or_path(str(teacher_path))).eval()
    )
    cache = _cache_for(source["cache"], teacher, train)
    settings = {
        name: source["distillation"][name]
        for name in ("temperature", "ce_weight", "kd_weight")
        if isinstance(source["distillation"].get(name), int | float)
    }
    with tempfile.TemporaryDirectory(prefix="hfkdq-prune-") as scratch:
        arguments = DistillationArguments(
            output_dir=scratch,
            num_train_epochs=epochs,
            learning_rate=args.learning_rate,
            per_device_train_batch_size=args.batch_size,
            seed=args.seed,
            save_strategy="no",
            report_to=[],
            logging_steps=50,
            **settings,
        )
        recover(student, teacher, arguments, train, data.data_collator, teacher_cache=cache)
    student.eval()
    return {
        "teacher": str(teacher_path),
        "epochs": epochs,
        "from_teacher_cache": cache is not None,
        **settings,
    }
