"""What a run directory says about itself: a recipe's results.json records the task, the data files,
the split its variants were compared on and the teacher. `hfkdq quantize` and `hfkdq evaluate`, handed
a run (or its student, or one of its variants), take them from there, so a student distilled on
CoNLL-2003 is scored on CoNLL-2003, not on the BTC default that only a bare model falls back to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfkdq.layout import METADATA_FILE, QUANTIZED_DIR, RESULTS_FILE, STUDENT_DIR

NER_TASK = "ner"


@dataclass(frozen=True)
class RunRecord:
    """The data and teacher a run's results.json records (any of them may be missing in an old run)."""

    run_dir: Path
    task: str | None
    """'ner', or the GLUE task name."""
    data_files: dict[str, str] = field(default_factory=dict)
    """Split -> file, as the recipe was given them (relative paths are relative to where it ran)."""
    eval_split: str | None = None
    """The split the run's quantized variants were measured on."""
    teacher_dir: Path | None = None
    """The teacher's directory, when it is one (a teacher fine-tuned by the run, or a local one)."""

    def describe(self, split: str) -> str:
        """The line the CLI prints, so a user sees which data a run directory stands for."""
        teacher = f", teacher {self.teacher_dir}" if self.teacher_dir else ""
        return (
            f"Using what {self.run_dir / RESULTS_FILE} records: task {self.task}, split {split} of "
            f"{', '.join(f'{name}={file}' for name, file in self.data_files.items())}{teacher} "
            "(name other data with --task/--data_dir/--eval_file)"
        )


def model_dir_of(path: str | Path) -> Path:
    """The model a run directory stands for (its student/); any other path as given."""
    path = Path(path)
    if (
        (path / STUDENT_DIR).is_dir()
        and (path / RESULTS_FILE).is_file()
        and not (path / "config.json").is_file()
    ):
        return path / STUDENT_DIR
    return path


def find_run_record(model_dir: str | Path) -> RunRecord | None:
    """The record of the run `model_dir` belongs to: RUN/student, RUN/quantized/<method>, or None."""
    model_dir = Path(model_dir)
    run_dir = None
    if model_dir.name == STUDENT_DIR:
        run_dir = model_dir.parent
    elif (model_dir / METADATA_FILE).is_file() and model_dir.parent.name == QUANTIZED_DIR:
        run_dir = model_dir.parent.parent
    if run_dir is None or not (run_dir / RESULTS_FILE).is_file():
        return None
    try:
        results = json.loads((run_dir / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{run_dir / RESULTS_FILE} cannot be read as JSON: {error}") from error
    return record_of(run_dir, results)


def record_of(run_dir: Path, results: dict[str, Any]) -> RunRecord | None:
    """The `RunRecord` in a run's results (None when they are not a recipe's results)."""
    if not isinstance(results, dict) or not isinstance(results.get("task"), dict):
        return None
    data = results.get("data") or {}
    head = results["task"].get("head")
    task = NER_TASK if head == "token" else data.get("task_name")
    teacher = (results.get("teacher") or {}).get("name_or_path")
    teacher_dir = Path(teacher) if isinstance(teacher, str) and Path(teacher).is_dir() else None
    if (results.get("student") or {}).get("tokenizer") == "own":
        teacher_dir = None  # it reads other tokens than the student's evaluation data holds
    return RunRecord(
        run_dir=run_dir,
        task=task,
        data_files={str(split): str(file) for split, file in (data.get("files") or {}).items()},
        eval_split=(results.get("quantization") or {}).get("eval_split"),
        teacher_dir=teacher_dir,
    )
