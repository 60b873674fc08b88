"""Task name + data location -> the held-out split, collator, metric code and calibration samples.

The one place that maps `--task ner|<glue task>` and `--eval_file/--data_dir/--train_file` to the
same `TaskData` the training recipes build, so a quantized variant is scored by exactly the metric
code its student was selected with. Recipes that already hold a `TaskData` skip this and call
`quantize_and_evaluate` directly.

It lives with the tasks, not in `hfkdq.quantization`: it is task data, which any evaluation of a saved
model can use.

NER labels are re-mapped to the model's `id2label` by name: label ids derived from a different set of
files can be ordered differently, and scoring with mismatched ids would be silently wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hfkdq.model_checks import TOKENIZER_FILES
from hfkdq.quantization.artifacts import inspect_evaluable_dir, inspect_model_dir
from hfkdq.run_record import RunRecord, find_run_record, model_dir_of

NER_TASK = "ner"
SPLIT_ALIASES = {
    "train": ("train",),
    "validation": ("validation", "dev", "valid", "val"),
    "test": ("test",),
}
DATA_SUFFIXES = (".conll", ".txt", ".tsv", ".csv", ".jsonl", ".json", ".iob", ".bio")


@dataclass
class EvaluationData:
    """What `quantize_and_evaluate` needs, plus the `TaskData` it came from."""

    task: Any
    """`hfkdq.tasks.TaskData`."""
    eval_split: str
    eval_dataset: Any
    calibration_dataset: Any | None
    task_name: str = NER_TASK
    """'ner' or the GLUE task name the data was built for."""
    run: RunRecord | None = None
    """The run whose recorded data this is, when it came from a run's results.json."""

    @property
    def data_collator(self):
        return self.task.data_collator

    @property
    def compute_metrics(self):
        return self.task.compute_metrics


def find_split_files(data_dir: str | Path) -> dict[str, str]:
    """train/validation/test files in a directory, by name: train.*, dev.*|validation.*, test.*."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"--data_dir {data_dir} is not a directory.")
    found = {}
    for split, stems in SPLIT_ALIASES.items():
        for stem in stems:
            matches = sorted(
                path for path in data_dir.iterdir() if path.stem == stem and path.suffix in DATA_SUFFIXES
            )
            if matches:
                found[split] = str(matches[0])
                break
    if not found:
        raise FileNotFoundError(
            f"No train/validation/test files in {data_dir} (expected names like train.tsv, dev.conll, test.txt)."
        )
    return found


def _data_files(
    task: str,
    eval_file: str | None,
    data_dir: str | None,
    train_file: str | None,
    eval_split: str,
    include_train: bool,
) -> dict[str, str] | None:
    files = find_split_files(data_dir) if data_dir else {}
    if eval_file:
        files[eval_split] = str(eval_file)
    if train_file:
        files["train"] = str(train_file)
    if task == NER_TASK and not files:
        from hfkdq.resources import btc_files

        files = btc_files()
    if not include_train:
        files.pop("train", None)
    return files or None


def recorded_data_files(record: RunRecord | None, include_train: bool) -> dict[str, str] | None:
    """The data files a run recorded (training split only with `include_train`); a recorded file that is
    no longer where the run read it fails, naming it, rather than falling back to other data."""
    if record is None or not record.data_files or record.task is None:
        return None
    files = {split: file for split, file in record.data_files.items() if include_train or split != "train"}
    for split, file in files.items():
        if not Path(file).is_file():
            raise FileNotFoundError(
                f"{record.run_dir / 'results.json'} records the {split} file {file}, which is not there (a "
                "relative path is relative to where the run was started): run from there, or name the data "
                "with --data_dir or --eval_file (and --task)"
            )
    return files or None


def _align_ner_labels(task: Any, model_labels: list[str]) -> Any:
    """Re-map label ids of every split to the model's order; fail on tags the model cannot predict."""
    from hfkdq.metrics.ner import build_ner_compute_metrics

    data_labels = list(task.label_names)
    if data_labels == model_labels:
        return task
    unknown = sorted(set(data_labels) - set(model_labels))
    if unknown:
        raise ValueError(
            f"The evaluation data has tags the model has no label for: {unknown}. Model labels: {model_labels}. "
            "Evaluate on data annotated with the same tag set the student was trained on."
        )
    lookup = {index: model_labels.index(name) for index, name in enumerate(data_labels)}

    def remap(batch: dict[str, list]) -> dict[str, list]:
        return {"labels": [[lookup.get(label, label) for label in row] for row in batch["labels"]]}

    features = task.features.map(remap, batched=True, desc="Aligning NER label ids with the model")
    return replace(
        task,
        features=features,
        label_names=model_labels,
        compute_metrics=build_ner_compute_metrics(model_labels),
    )


def _ner_task(
    tokenizer: Any, files: dict[str, str] | None, max_seq_length: int, max_eval_samples: int | None
):
    from hfkdq.tasks.ner import NerDataArguments, build_ner_task

    files = files or {}
    arguments = NerDataArguments(
        train_file=files.get("train"),
        validation_file=files.get("validation"),
        test_file=files.get("test"),
        max_seq_length=max_seq_length,
        max_eval_samples=max_eval_samples,
    )
    return build_ner_task(arguments, tokenizer)


def _glue_task(
    name: str, tokenizer: Any, files: dict[str, str] | None, max_seq_length: int, max_eval_samples: int | None
):
    from hfkdq.data.glue import load_glue_dataset
    from hfkdq.glue_tasks import get_glue_task
    from hfkdq.tasks.glue import glue_task_data

    glue = get_glue_task(name)
    raw = load_glue_dataset(glue, data_files=files)
    for split in raw:
        if split != "train" and max_eval_samples is not None and len(raw[split]) > max_eval_samples:
            raw[split] = raw[split].select(range(max_eval_samples))
    data = glue_task_data(glue, raw, tokenizer, max_seq_length)
    # Any non-training split a user named (e.g. --eval_split dev) is evaluable here.
    return replace(
        data, eval_splits=data.eval_splits or [split for split in data.features if split != "train"]
    )


def load_evaluation_data(
    model_dir: str | Path,
    task: str | None = None,
    *,
    eval_file: str | None = None,
    data_dir: str | None = None,
    train_file: str | None = None,
    eval_split: str | None = None,
    max_eval_samples: int | None = None,
    max_seq_length: int = 128,
    include_train: bool = True,
    allow_variants: bool = False,
) -> EvaluationData:
    """Build the evaluation data for the student in `model_dir`, tokenized with its own tokenizer.

    `task`: "ner" (default for token-classification models; without files the embedded BTC corpus is
    used) or a GLUE task name (sst2, rte, ...; required for sequence-classification models).
    The training split is tokenized only with `include_train` (static quantization's calibration pool).
    `allow_variants` accepts a quantized variant directory too (`hfkdq evaluate`); quantizing refuses
    one up front, before any data is read, so it leaves this off.
    A run directory, or a model inside one (RUN/student, RUN/quantized/<method>), given without `task`,
    `eval_file`, `data_dir` or `train_file`, is evaluated on the task, data files and split its
    results.json records (`hfkdq.run_record`); the BTC default is for a bare model only.
    """
    from transformers import AutoTokenizer

    model_dir = model_dir_of(model_dir)
    # A run's own data, when the user names none: what its student was trained and selected on.
    record = None if (task or eval_file or data_dir or train_file) else find_run_record(model_dir)
    recorded_files = recorded_data_files(record, include_train)
    if recorded_files:
        task, eval_split = record.task, eval_split or record.eval_split
    model = inspect_evaluable_dir(model_dir) if allow_variants else inspect_model_dir(model_dir)
    task = (task or (NER_TASK if model.head == "token" else "")).lower()
    if not task:
        raise ValueError(
            f"{model.path} is a sequence-classification model: name its GLUE task (--task sst2, ...)."
        )
    if (task == NER_TASK) != (model.head == "token"):
        raise ValueError(f"Task {task!r} does not fit {model.path}, a {model.head}-classification model.")
    if not any((Path(model.path) / name).is_file() for name in TOKENIZER_FILES):
        # transformers fails deep inside (a TypeError on a None vocab path) without naming the files
        raise ValueError(
            f"{model.path} has no tokenizer to tokenize the evaluation data with: missing tokenizer files (one "
            f"of {', '.join(TOKENIZER_FILES[:3])}); save it beside the model with tokenizer.save_pretrained(dir)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model.path))
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(
            f"{model.path} has no tokenizer to tokenize the evaluation data with: {error}"
        ) from error

    files = recorded_files or _data_files(
        task, eval_file, data_dir, train_file, eval_split or "validation", include_train
    )
    if task == NER_TASK:
        data = _ner_task(tokenizer, files, max_seq_length, max_eval_samples)
        data = _align_ner_labels(data, [model.config.id2label[i] for i in range(model.config.num_labels)])
    else:
        data = _glue_task(task, tokenizer, files, max_seq_length, max_eval_samples)
        if data.num_labels != model.config.num_labels:
            raise ValueError(
                f"{model.path} has {model.config.num_labels} outputs but task {task!r} has {data.num_labels}."
            )
    split = eval_split or (data.eval_splits[0] if data.eval_splits else None)
    if split is None or split not in data.features:
        raise ValueError(
            f"No evaluation split {split!r} in the data (splits: {list(data.features)}); pass --eval_split or --eval_file."
        )
    calibration = data.features["train"] if "train" in data.features and split != "train" else None
    return EvaluationData(
        task=data,
        eval_split=split,
        eval_dataset=data.features[split],
        calibration_dataset=calibration,
        task_name=task,
        run=record if recorded_files else None,
    )
