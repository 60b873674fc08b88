"""NER task: CoNLL files or a Hub dataset -> `TaskData` (first-subword labels, seqeval metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
from transformers import EvalPrediction, PreTrainedTokenizerBase

from hfkdq.data.conll import TOKENS_COLUMN, label_names_of, load_ner_dataset
from hfkdq.data.ner import ner_data_collator, prepare_ner_features
from hfkdq.data.ner_features import tokenize_and_align_labels
from hfkdq.metrics.ner import build_ner_compute_metrics, logits_to_tag_sequences, ner_classification_report
from hfkdq.resources import btc_files
from hfkdq.tasks import TaskData, unlabeled_remainder
from hfkdq.validation import check_data_sizes, check_entity_types, check_splits_not_empty


@dataclass
class NerDataArguments:
    """Where the NER data comes from. With no files and no dataset name: the embedded Broad Twitter Corpus."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "Hub dataset with tokens/ner_tags (online)."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Hub dataset configuration."})
    train_file: str | None = field(default=None, metadata={"help": "CoNLL training file."})
    validation_file: str | None = field(default=None, metadata={"help": "CoNLL validation file."})
    test_file: str | None = field(default=None, metadata={"help": "CoNLL test file."})
    tag_scheme: str = field(
        default="auto", metadata={"help": "Tag scheme of local files: auto, iob1 or iob2."}
    )
    label_all_tokens: bool = field(
        default=False,
        metadata={"help": "Label every subword (B- becomes I- after the first) instead of the first."},
    )
    max_seq_length: int = field(
        default=128, metadata={"help": "Truncate longer sentences to this many tokens."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use the first N training sentences."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use the first N sentences of eval splits."}
    )

    def __post_init__(self) -> None:
        check_data_sizes(self.max_seq_length, self.max_train_samples, self.max_eval_samples)
        files = [name for name in ("train_file", "validation_file", "test_file") if getattr(self, name)]
        if self.dataset_name and files:
            raise ValueError(
                f"--dataset_name {self.dataset_name} and --{files[0]} both name the data: pass one of them "
                "(local files, or a Hub dataset)"
            )
        if self.dataset_config_name and not self.dataset_name:
            raise ValueError(
                f"--dataset_config_name {self.dataset_config_name} applies only with --dataset_name: add it, or drop it"
            )

    def data_files(self) -> dict[str, str] | None:
        files = {"train": self.train_file, "validation": self.validation_file, "test": self.test_file}
        files = {split: path for split, path in files.items() if path}
        if self.dataset_name is None and not files:
            return btc_files()
        return files or None


def build_ner_task(data_args: NerDataArguments, tokenizer: PreTrainedTokenizerBase) -> TaskData:
    raw = load_ner_dataset(
        data_files=data_args.data_files(),
        dataset_name=data_args.dataset_name if not data_args.data_files() else None,
        dataset_config=data_args.dataset_config_name,
        scheme=data_args.tag_scheme,
    )
    remainder = unlabeled_remainder(raw.get("train"), data_args.max_train_samples, [TOKENS_COLUMN])
    raw = _select(raw, "train", data_args.max_train_samples)
    for split in raw:
        if split != "train":
            raw = _select(raw, split, data_args.max_eval_samples)
    check_splits_not_empty(raw, data_args.data_files())
    label_names = label_names_of(raw)
    check_entity_types(raw, label_names, data_args.data_files())
    features = prepare_ner_features(raw, tokenizer, data_args.label_all_tokens, data_args.max_seq_length)
    featurize = partial(
        tokenize_and_align_labels,
        tokenizer=tokenizer,
        label_all_tokens=data_args.label_all_tokens,
        max_length=data_args.max_seq_length,
        label_names=label_names,
    )
    eval_splits = [split for split in ("validation", "test") if split in features]
    return TaskData(
        features=features,
        label_names=label_names,
        head="token",
        data_collator=ner_data_collator(tokenizer),
        compute_metrics=build_ner_compute_metrics(label_names),
        main_metric="f1",
        eval_splits=eval_splits,
        classification_report=lambda prediction: _report(prediction, label_names),
        raw_train=raw["train"] if "train" in raw else None,
        featurize=featurize,
        train_remainder=remainder,
    )


def _select(raw, split: str, limit: int | None):
    if limit is not None and split in raw and len(raw[split]) > limit:
        raw[split] = raw[split].select(range(limit))
    return raw


def _report(prediction: EvalPrediction, label_names: list[str]) -> str:
    logits = (
        prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    )
    predicted, gold = logits_to_tag_sequences(
        np.asarray(logits), np.asarray(prediction.label_ids), label_names
    )
    return ner_classification_report(predicted, gold)
