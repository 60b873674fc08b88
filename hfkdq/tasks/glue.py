"""GLUE tasks: local TSV/CSV/JSON files or a Hub dataset -> `TaskData` (sequence head, GLUE metrics)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from functools import partial

from datasets import DatasetDict
from transformers import PreTrainedTokenizerBase

from hfkdq.data.glue import glue_data_collator, glue_eval_splits, load_glue_dataset, prepare_glue_features
from hfkdq.glue_tasks import GlueTask, get_glue_task
from hfkdq.metrics.glue import build_glue_compute_metrics, main_metric_name
from hfkdq.tasks import TaskData, unlabeled_remainder
from hfkdq.validation import check_data_sizes, check_splits_not_empty

logger = logging.getLogger(__name__)


@dataclass
class GlueDataArguments:
    """Which GLUE task, and where its data comes from: local files, or a Hub dataset."""

    task_name: str = field(
        metadata={"help": "cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte or wnli (case and hyphens ignored)."}
    )
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Hub dataset (default without files: nyu-mll/glue). Takes precedence over files."},
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "Hub configuration (default for nyu-mll/glue: the task name)."}
    )
    train_file: str | None = field(
        default=None, metadata={"help": "Training file: .tsv, .csv, .json or .jsonl."}
    )
    validation_file: str | None = field(
        default=None,
        metadata={"help": "Validation file (for MNLI with --validation_mismatched_file: matched)."},
    )
    validation_mismatched_file: str | None = field(
        default=None, metadata={"help": "MNLI only: the mismatched validation file."}
    )
    test_file: str | None = field(
        default=None, metadata={"help": "Test file; evaluated when it has labels, otherwise ignored."}
    )
    text_columns: list[str] | None = field(
        default=None,
        metadata={"help": "Text column(s) of your own files, one per task text (two for pair tasks)."},
    )
    label_column: str | None = field(default=None, metadata={"help": "Label column of your own files."})
    max_seq_length: int = field(default=128, metadata={"help": "Truncate longer inputs to this many tokens."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use the first N training examples."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use the first N examples of each evaluation split."}
    )

    def __post_init__(self) -> None:
        # Fail on a misspelt task or a bad size before any model or data is loaded; store the canonical name.
        self.task_name = get_glue_task(self.task_name).name
        check_data_sizes(self.max_seq_length, self.max_train_samples, self.max_eval_samples)

    def data_files(self) -> dict[str, str] | None:
        """Split name -> local file, or None to read `dataset_name` (or the Hub's GLUE) instead."""
        task = get_glue_task(self.task_name)
        validation = "validation"
        if self.validation_mismatched_file:
            if task.name != "mnli":
                raise ValueError(f"--validation_mismatched_file is for MNLI only, not {task.name!r}.")
            validation = "validation_matched"
        files = {
            "train": self.train_file,
            validation: self.validation_file,
            "validation_mismatched": self.validation_mismatched_file,
            "test": self.test_file,
        }
        files = {split: path for split, path in files.items() if path}
        if self.dataset_name is not None:
            if files:
                logger.warning(
                    "--dataset_name %s is used; the local files %s are ignored.", self.dataset_name, files
                )
            return None
        return files or None


def build_glue_task(data_args: GlueDataArguments, tokenizer: PreTrainedTokenizerBase) -> TaskData:
    """GLUE data -> the `TaskData` the shared pipeline consumes (sequence head, GLUE metrics)."""
    task = get_glue_task(data_args.task_name)
    raw = load_glue_dataset(
        task,
        data_files=data_args.data_files(),
        dataset_name=data_args.dataset_name,
        dataset_config_name=data_args.dataset_config_name,
        text_columns=data_args.text_columns,
        label_column=data_args.label_column,
    )
    if "train" not in raw:
        raise ValueError(
            f"GLUE task {task.name!r} needs a training split: pass --train_file or a Hub dataset."
        )
    remainder = unlabeled_remainder(raw["train"], data_args.max_train_samples, list(task.text_columns))
    for split in raw:
        limit = data_args.max_train_samples if split == "train" else data_args.max_eval_samples
        if limit is not None and len(raw[split]) > limit:
            raw[split] = raw[split].select(range(limit))
    check_splits_not_empty(raw, data_args.data_files())
    return dataclasses.replace(
        glue_task_data(task, raw, tokenizer, data_args.max_seq_length), train_remainder=remainder
    )


def glue_task_data(
    task: GlueTask, raw: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
) -> TaskData:
    """Loaded GLUE splits -> `TaskData`; shared by the recipe and the quantize CLI's evaluation data."""
    features = prepare_glue_features(raw, tokenizer, task, max_seq_length)
    eval_splits = glue_eval_splits(task, features)
    # A labelled test split is evaluated as well; an unlabelled one (GLUE's own) has no `labels`.
    eval_splits += [
        split for split in features if "test" in split and "labels" in features[split].column_names
    ]
    if not eval_splits:
        logger.warning(
            "No labelled evaluation split for %s: the student is trained but not evaluated.", task.name
        )
    return TaskData(
        features=features,
        label_names=list(task.label_names) if task.label_names is not None else None,
        head="sequence",
        data_collator=glue_data_collator(tokenizer),
        compute_metrics=build_glue_compute_metrics(task),
        main_metric=main_metric_name(task),
        eval_splits=eval_splits,
        problem_type="regression" if task.is_regression else "single_label_classification",
        raw_train=raw["train"] if "train" in raw else None,
        featurize=partial(
            _featurize, tokenizer=tokenizer, text_columns=task.text_columns, max_length=max_seq_length
        ),
        text_columns=tuple(task.text_columns),
    )


def _featurize(batch: dict[str, list], tokenizer, text_columns, max_length: int) -> dict[str, list]:
    """Raw GLUE examples -> features, as `prepare_glue_features` makes them (for augmented views)."""
    features = dict(
        tokenizer(*[batch[column] for column in text_columns], truncation=True, max_length=max_length)
    )
    features["labels"] = batch["label"]
    return features
