"""The nine GLUE tasks as data: everything that differs between them, and the lookup by name.

Every task is described once, in `GLUE_TASKS`, so the loaders (`hfkdq.data.glue`), the metrics
(`hfkdq.metrics.glue`), the recipe and the tests never branch on a task name: a new GLUE-style task is
a registry entry, not new code. This module needs nothing but the standard library, so the metrics can
read the registry without importing the data loaders.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GlueTask:
    """Everything that differs between GLUE tasks, so that code handling them never tests a task name.

    `column_aliases` maps the task's canonical column (the Hub's name) to its name in the original
    GLUE distribution (e.g. MNLI's `gold_label`), so those files load without renaming by hand.
    `headerless_columns` names the columns of files without a header row (CoLA's train/dev TSVs).
    """

    name: str
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...] | None
    is_regression: bool
    metric_names: tuple[str, ...]
    eval_splits: tuple[str, ...] = ("validation",)
    hub_config: str | None = None
    column_aliases: tuple[tuple[str, str], ...] = ()
    headerless_columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.text_columns) not in (1, 2):
            raise ValueError(
                f"GLUE task {self.name!r}: text_columns must hold 1 or 2 names, got {self.text_columns}"
            )
        if self.is_regression != (self.label_names is None):
            raise ValueError(f"GLUE task {self.name!r}: label_names must be None exactly when is_regression")
        if self.hub_config is None:
            object.__setattr__(self, "hub_config", self.name)

    @property
    def num_labels(self) -> int:
        """Output size of the classification head: 1 for regression, as `AutoModelFor...` expects."""
        return 1 if self.label_names is None else len(self.label_names)

    @property
    def is_pair(self) -> bool:
        """Whether each example is a pair of texts (encoded together as `[CLS] a [SEP] b [SEP]`)."""
        return len(self.text_columns) == 2

    def aliases_of(self, column: str) -> tuple[str, ...]:
        """Names the canonical `column` may have in the original GLUE files."""
        return tuple(alias for canonical, alias in self.column_aliases if canonical == column)


GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask(
            name="cola",
            text_columns=("sentence",),
            label_names=("unacceptable", "acceptable"),
            is_regression=False,
            metric_names=("matthews_correlation",),
            headerless_columns=("source", "label", "original_label", "sentence"),
        ),
        GlueTask(
            name="sst2",
            text_columns=("sentence",),
            label_names=("negative", "positive"),
            is_regression=False,
            metric_names=("accuracy",),
        ),
        GlueTask(
            name="mrpc",
            text_columns=("sentence1", "sentence2"),
            label_names=("not_equivalent", "equivalent"),
            is_regression=False,
            metric_names=("accuracy", "f1"),
            column_aliases=(("sentence1", "#1 String"), ("sentence2", "#2 String"), ("label", "Quality")),
        ),
        GlueTask(
            name="qqp",
            text_columns=("question1", "question2"),
            label_names=("not_duplicate", "duplicate"),
            is_regression=False,
            metric_names=("accuracy", "f1"),
            column_aliases=(("label", "is_duplicate"),),
        ),
        GlueTask(
            name="stsb",
            text_columns=("sentence1", "sentence2"),
            label_names=None,
            is_regression=True,
            metric_names=("pearson", "spearmanr"),
            column_aliases=(("label", "score"),),
        ),
        GlueTask(
            name="mnli",
            text_columns=("premise", "hypothesis"),
            label_names=("entailment", "neutral", "contradiction"),
            is_regression=False,
            metric_names=("accuracy",),
            eval_splits=("validation_matched", "validation_mismatched"),
            column_aliases=(("premise", "sentence1"), ("hypothesis", "sentence2"), ("label", "gold_label")),
        ),
        GlueTask(
            name="qnli",
            text_columns=("question", "sentence"),
            label_names=("entailment", "not_entailment"),
            is_regression=False,
            metric_names=("accuracy",),
        ),
        GlueTask(
            name="rte",
            text_columns=("sentence1", "sentence2"),
            label_names=("entailment", "not_entailment"),
            is_regression=False,
            metric_names=("accuracy",),
        ),
        GlueTask(
            name="wnli",
            text_columns=("sentence1", "sentence2"),
            label_names=("not_entailment", "entailment"),
            is_regression=False,
            metric_names=("accuracy",),
        ),
    )
}

_TASK_ALIASES = {"mnlim": "mnli", "mnlimm": "mnli", "mnlimatched": "mnli", "mnlimismatched": "mnli"}
"""Spellings of MNLI's evaluation variants: both are evaluated whenever MNLI is, so all mean MNLI."""


def get_glue_task(name: str | GlueTask) -> GlueTask:
    """The registry entry for `name`, ignoring case, hyphens and underscores ("SST-2", "STS-B", "mnli-mm")."""
    if isinstance(name, GlueTask):
        return name
    key = "".join(character for character in str(name).lower() if character.isalnum())
    key = _TASK_ALIASES.get(key, key)
    if key not in GLUE_TASKS:
        raise ValueError(f"Unknown GLUE task {name!r}; valid task names are: {', '.join(GLUE_TASKS)}.")
    return GLUE_TASKS[key]
