"""What a recipe hands to the shared experiment flow: tokenized splits, labels, collator, metrics.

Each task family (NER, GLUE) has a builder here that turns its data arguments and the teacher's
tokenizer into a `TaskData`; `hfkdq.pipeline` and the quantize CLI consume only this shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset, DatasetDict


@dataclass
class TaskData:
    features: DatasetDict
    """Tokenized splits with input_ids/attention_mask/labels, as the model consumes them."""
    label_names: list[str] | None
    """Class names in id order; None for a regression head."""
    head: str
    """'token' (token classification) or 'sequence' (sequence classification / regression)."""
    data_collator: Any
    compute_metrics: Callable[[Any], dict[str, float]]
    main_metric: str
    """Metric that ranks variants, e.g. 'f1' for NER, 'accuracy' for SST-2."""
    eval_splits: list[str] = field(default_factory=lambda: ["validation"])
    train_split: str = "train"
    classification_report: Callable[[Any], str] | None = None
    """Optional text report of an EvalPrediction (seqeval's per-type table for NER)."""
    problem_type: str | None = None
    raw_train: Dataset | None = None
    """The training split before tokenization (words, tags or text columns): what augmentations rewrite."""
    featurize: Callable[[dict[str, list]], dict[str, list]] | None = None
    """Batched function turning raw examples into features exactly as ``features`` were made."""
    text_columns: tuple[str, ...] = ()
    """Text columns of a sequence task's raw examples."""
    train_remainder: Dataset | None = None
    """The training examples that ``max_train_samples`` cut off, text columns only: their labels are
    dropped where the split is cut, so unlabeled transfer data built from them cannot read one."""

    @property
    def train_dataset(self) -> Dataset:
        return self.features[self.train_split]

    @property
    def num_labels(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)

    def label_maps(self) -> dict[str, dict]:
        """id2label/label2id for a model config (regression: one unnamed output)."""
        names = self.label_names or ["score"]
        return {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}


def unlabeled_remainder(train: Dataset | None, limit: int | None, text_columns: list[str]) -> Dataset | None:
    """The examples past the first ``limit`` of a training split, with only their text columns."""
    if train is None or limit is None or len(train) <= limit:
        return None
    return train.select(range(limit, len(train))).select_columns(list(text_columns))
