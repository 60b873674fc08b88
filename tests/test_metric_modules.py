"""The `evaluate` metric modules: same numbers as the pure functions, batched or not, and no network."""

from __future__ import annotations

import socket

import evaluate
import numpy as np
import pytest

from hfkdq.metrics import Glue, Seqeval, metric_script_path, offline_metric
from hfkdq.metrics.glue import glue_metrics
from hfkdq.metrics.ner import flatten_seqeval_scores, ner_metrics, seqeval_scores

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Offline mode, and any connection attempt fails the test: the modules must never reach for the Hub.

    The socket guard is the proof; HF_HUB_OFFLINE=1 (also set by conftest before any import) is the
    setting users run with.
    """

    def refuse(*args, **kwargs):
        raise AssertionError(f"metric module tried to open a connection: {args}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)


def glue_data(task: str, size: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy predictions of random labels (scores for STS-B), so every metric is away from 0 and 1."""
    generator = np.random.default_rng(seed)
    if task == "stsb":
        references = generator.uniform(0, 5, size)
        return references + generator.normal(0, 1, size), references
    references = generator.integers(0, 3 if task == "mnli" else 2, size)
    predictions = np.where(generator.random(size) < 0.7, references, 1 - references.clip(max=1))
    return predictions, references


def ner_data(sentences: int = 30, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Random gold tag sequences and predictions with about a third of the tags replaced."""
    generator = np.random.default_rng(seed)
    references = [
        [str(tag) for tag in generator.choice(TAGS, generator.integers(1, 12))] for _ in range(sentences)
    ]
    predictions = [
        [str(generator.choice(TAGS)) if generator.random() < 0.3 else tag for tag in sentence]
        for sentence in references
    ]
    return predictions, references


def module_and_pure(name: str, config: str | None):
    """(module, its inputs, what the pure function gives for them), for each metric under test."""
    if name == "glue":
        predictions, references = glue_data(config)
        return (
            Glue(config, keep_in_memory=True),
            predictions,
            references,
            glue_metrics(config, predictions, references),
        )
    predictions, references = ner_data()
    return Seqeval(keep_in_memory=True), predictions, references, seqeval_scores(predictions, references)


CASES = [
    pytest.param("glue", "cola", id="glue-cola"),
    pytest.param("glue", "mrpc", id="glue-mrpc"),
    pytest.param("glue", "stsb", id="glue-stsb"),
    pytest.param("glue", "mnli", id="glue-mnli"),
    pytest.param("seqeval", None, id="seqeval"),
]


@pytest.mark.parametrize(("name", "config"), CASES)
def test_compute_returns_exactly_what_the_pure_function_does(name, config):
    metric, predictions, references, expected = module_and_pure(name, config)

    assert metric.compute(predictions=predictions, references=references) == expected


@pytest.mark.parametrize(("name", "config"), CASES)
def test_three_batches_give_the_same_result_as_one_compute(name, config):
    metric, predictions, references, expected = module_and_pure(name, config)

    for batch in np.array_split(np.arange(len(references)), 3):
        metric.add_batch(
            predictions=[predictions[i] for i in batch], references=[references[i] for i in batch]
        )

    assert metric.compute() == expected


@pytest.mark.parametrize(("name", "config"), CASES)
def test_evaluate_load_of_the_module_file_and_offline_metric_agree(name, config, tmp_path):
    _, predictions, references, expected = module_and_pure(name, config)

    loaded = evaluate.load(str(metric_script_path(name)), config, cache_dir=str(tmp_path))
    helper = offline_metric(name, config, cache_dir=str(tmp_path / "helper"))

    assert loaded.name == helper.name == name  # the Hub metric's name
    assert loaded.compute(predictions=predictions, references=references) == expected
    assert helper.compute(predictions=predictions, references=references) == expected


def test_glue_module_keys_follow_the_hub_metric():
    """The Hub's key names, plus `combined_score` where a task reports two metrics (as run_glue adds)."""
    expected_keys = {
        "cola": {"matthews_correlation"},
        "sst2": {"accuracy"},
        "mrpc": {"accuracy", "f1", "combined_score"},
        "stsb": {"pearson", "spearmanr", "combined_score"},
    }
    for task, keys in expected_keys.items():
        predictions, references = glue_data(task)
        assert (
            set(Glue(task, keep_in_memory=True).compute(predictions=predictions, references=references))
            == keys
        )


def test_seqeval_module_has_the_hub_shape_and_flattens_to_ner_metrics():
    predictions, references = ner_data()
    scores = Seqeval(keep_in_memory=True).compute(predictions=predictions, references=references)

    assert {"overall_precision", "overall_recall", "overall_f1", "overall_accuracy"} <= set(scores)
    assert set(scores["PER"]) == {"precision", "recall", "f1", "number"}
    assert type(scores["PER"]["number"]) is int
    assert flatten_seqeval_scores(scores) == ner_metrics(predictions, references)


def test_seqeval_options_are_passed_through_like_the_hub_metric():
    """Strict IOB2 drops a predicted entity that starts with I-, which conlleval's reading keeps."""
    metric = Seqeval(keep_in_memory=True)
    inputs = {"predictions": [["O", "I-PER"]], "references": [["O", "B-PER"]]}

    assert metric.compute(**inputs)["overall_f1"] == 1.0
    assert metric.compute(**inputs, mode="strict", scheme="IOB2")["overall_f1"] == 0.0


def test_glue_without_a_task_and_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="needs the task as its config name"):
        Glue()
    with pytest.raises(ValueError, match="Unknown GLUE task 'imdb'"):
        offline_metric("glue", "imdb")
    with pytest.raises(ValueError, match="available: glue, seqeval"):
        offline_metric("bleu")
