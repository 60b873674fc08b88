"""The GLUE recipe end to end, on tiny random-weight models: a few steps per run, seconds each.

One single-sentence task (SST-2), one pair task (RTE) and one regression task (STS-B-style scores)
go through teacher -> student -> distillation -> evaluation -> saving; each run must leave a results
file with the task's metrics and a student that loads on its own.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT, SHARED_DATA, TEST_DATA, import_script, requires_shared_data, tiny_bert_config
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertForSequenceClassification,
    BertModel,
)

from hfkdq.glue_tasks import GLUE_TASKS
from hfkdq.recipe_args import parse_recipe_args

CONFIGS = REPO_ROOT / "recipes" / "configs"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine the threads
    wait on each other: one thread makes these runs ~10x faster there."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def load_recipe():
    """The recipe script as a module, so its `main(argv)` runs in-process (no interpreter start-up)."""
    return import_script("recipes/distill_bert_glue.py")


def head(source: Path, destination: Path, rows: int) -> str:
    with source.open(encoding="utf-8") as handle:
        destination.write_text("".join(next(handle) for _ in range(rows + 1)), encoding="utf-8")
    return str(destination)


def save_tiny_teacher(directory: Path, tokenizer, label_names: tuple[str, ...] | None = None) -> str:
    """A 4-layer random BERT: a bare encoder (fine-tuned by the recipe first) or one with the task's head."""
    if label_names is None:
        model = BertModel(tiny_bert_config(num_labels=2))
    else:
        config = tiny_bert_config(num_labels=len(label_names))
        config.id2label = dict(enumerate(label_names))
        config.label2id = {name: i for i, name in enumerate(label_names)}
        model = BertForSequenceClassification(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def quick_run_flags(teacher: str, output_dir: Path) -> list[str]:
    return [
        "--teacher_name_or_path", teacher,
        "--student_num_layers", "2",
        "--output_dir", str(output_dir),
        "--max_steps", "3",
        "--teacher_max_steps", "3",
        "--learning_rate", "1e-3",
        "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "32",
        "--max_seq_length", "64",
        "--group_by_length", "true",
        "--eval_strategy", "no",
        "--save_strategy", "no",
        "--report_to", "none",
        "--disable_tqdm", "true",
        "--seed", "0",
    ]  # fmt: skip


def check_saved_student(output_dir: Path, num_labels: int) -> None:
    student = AutoModelForSequenceClassification.from_pretrained(output_dir / "student")
    assert student.config.num_hidden_layers == 2
    assert student.config.num_labels == num_labels
    AutoTokenizer.from_pretrained(output_dir / "student")


def test_shipped_configs_parse_into_recipe_arguments():
    recipe = load_recipe()
    types = (recipe.ModelArguments, recipe.GlueDataArguments, recipe.DistillationArguments)
    for name, task in (("glue_sst2_minilm.yaml", "sst2"), ("glue_rte_minilm.yaml", "rte")):
        model_args, data_args, training_args = parse_recipe_args(types, [str(CONFIGS / name)])
        assert data_args.task_name == task
        assert model_args.teacher_name_or_path == "sentence-transformers/all-MiniLM-L6-v2"
        assert model_args.student_num_layers == 3
        grouped = getattr(training_args, "group_by_length", None) or (
            getattr(training_args, "train_sampling_strategy", None) == "group_by_length"
        )
        assert grouped, "length-grouped batches keep padding small"


def test_task_name_is_checked_when_arguments_are_parsed():
    recipe = load_recipe()
    assert recipe.GlueDataArguments(task_name="STS-B").task_name == "stsb"
    with pytest.raises(ValueError, match="valid task names are: cola, sst2"):
        recipe.GlueDataArguments(task_name="sst-3")


def test_mismatched_validation_file_is_mnli_only():
    recipe = load_recipe()
    arguments = recipe.GlueDataArguments(
        task_name="rte", train_file="t.tsv", validation_mismatched_file="mm.tsv"
    )
    with pytest.raises(ValueError, match="MNLI only"):
        arguments.data_files()
    mnli = recipe.GlueDataArguments(
        task_name="mnli", validation_file="m.tsv", validation_mismatched_file="mm.tsv"
    )
    assert mnli.data_files() == {"validation_matched": "m.tsv", "validation_mismatched": "mm.tsv"}


@requires_shared_data
def test_single_sentence_task_sst2(tmp_path, minilm_tokenizer):
    """Bare encoder as teacher: the recipe fine-tunes it on SST-2 first, then distills (shipped config)."""
    sst2 = SHARED_DATA / "glue" / "sst2"
    teacher = save_tiny_teacher(tmp_path / "teacher", minilm_tokenizer)
    results = load_recipe().main(
        [
            str(CONFIGS / "glue_sst2_minilm.yaml"),
            "--train_file", head(sst2 / "train.tsv", tmp_path / "train.tsv", 48),
            "--validation_file", head(sst2 / "validation.tsv", tmp_path / "validation.tsv", 24),
            *quick_run_flags(teacher, tmp_path / "out"),
        ]
    )  # fmt: skip

    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["task"] == {
        "head": "sequence",
        "labels": ["negative", "positive"],
        "main_metric": "accuracy",
    }
    for role in ("teacher", "student"):
        accuracy = saved[role]["metrics"]["validation"]["accuracy"]
        assert 0.0 <= accuracy <= 1.0
    assert saved["student"]["metrics"] == results["student"]["metrics"]
    assert (tmp_path / "out" / "teacher").is_dir(), "the teacher fine-tuned here is saved beside the student"
    check_saved_student(tmp_path / "out", num_labels=2)


@requires_shared_data
def test_pair_task_rte_with_a_fine_tuned_teacher(tmp_path, minilm_tokenizer):
    """A teacher that already has RTE's head is loaded as is; both texts of each pair reach the models."""
    rte = SHARED_DATA / "glue" / "rte"
    teacher = save_tiny_teacher(tmp_path / "teacher", minilm_tokenizer, GLUE_TASKS["rte"].label_names)
    load_recipe().main(
        [
            "--task_name", "RTE",
            "--train_file", head(rte / "train.tsv", tmp_path / "train.tsv", 32),
            "--validation_file", head(rte / "validation.tsv", tmp_path / "validation.tsv", 16),
            *quick_run_flags(teacher, tmp_path / "out"),
        ]
    )  # fmt: skip

    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["task"]["labels"] == ["entailment", "not_entailment"]
    assert saved["teacher"]["name_or_path"] == teacher
    assert not (tmp_path / "out" / "teacher").exists(), "a ready teacher is not re-trained"
    assert set(saved["student"]["metrics"]["validation"]) >= {"accuracy", "loss"}
    check_saved_student(tmp_path / "out", num_labels=2)
    student = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out" / "student")
    assert student.config.id2label == {0: "entailment", 1: "not_entailment"}


def test_regression_task_stsb_from_csv_scores(tmp_path, minilm_tokenizer):
    """STS-B is distilled by MSE to the teacher's scores: with the gold-label term off, loss stays > 0."""
    teacher = save_tiny_teacher(tmp_path / "teacher", minilm_tokenizer)
    scores = str(TEST_DATA / "glue_stsb_tiny.csv")
    load_recipe().main(
        [
            "--task_name", "STS-B",
            "--train_file", scores,
            "--validation_file", scores,
            *quick_run_flags(teacher, tmp_path / "out"),
            "--ce_weight", "0",
        ]
    )  # fmt: skip

    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["task"] == {"head": "sequence", "labels": None, "main_metric": "combined_score"}
    metrics = saved["student"]["metrics"]["validation"]
    assert set(metrics) >= {"pearson", "spearmanr", "combined_score"}
    assert all(-1.0 <= metrics[name] <= 1.0 for name in ("pearson", "spearmanr"))
    assert saved["train_metrics"]["train_loss"] > 0, (
        "regression KD is a real MSE, not a one-class KL (always 0)"
    )
    check_saved_student(tmp_path / "out", num_labels=1)
    student = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out" / "student")
    assert student.config.problem_type == "regression"
