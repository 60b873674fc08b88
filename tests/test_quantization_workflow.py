"""`quantize_and_evaluate`, the call the CLI and the recipes share: every method, measured the same way,
reported, and gated by `max_metric_drop`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_quantization_support import save_tiny_model, tokenized_dataset
from transformers import DataCollatorForTokenClassification, EvalPrediction

import hfkdq.quantization.workflow as workflow
from hfkdq.quantization import CalibrationDataError, MetricDropError, load_variant, quantize_and_evaluate
from hfkdq.quantization.workflow import choose_main_metric, parse_methods

FAST = {"latency_batch_sizes": (1, 4), "latency_seq_len": 16, "latency_repeats": 1, "latency_warmup": 0}


def token_accuracy(prediction: EvalPrediction) -> dict[str, float]:
    predicted = prediction.predictions.argmax(-1)
    keep = prediction.label_ids != -100
    return {"accuracy": float((predicted[keep] == prediction.label_ids[keep]).mean())}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, minilm_tokenizer):
    root = tmp_path_factory.mktemp("workflow")
    student = save_tiny_model(root / "student", minilm_tokenizer, head="token", num_labels=5, seed=1)
    teacher = save_tiny_model(root / "teacher", minilm_tokenizer, head="token", num_labels=5, seed=2)
    dataset = tokenized_dataset(minilm_tokenizer, "token", num_labels=5)
    return student, teacher, dataset, DataCollatorForTokenClassification(minilm_tokenizer)


def run(setup, output_dir, methods, **kwargs):
    student, _, dataset, collator = setup
    return quantize_and_evaluate(
        student, methods, output_dir, dataset, collator, token_accuracy, **FAST, **kwargs
    )


def test_every_variant_is_measured_reported_and_verified(setup, tmp_path):
    student, teacher, dataset, _ = setup
    results = run(
        setup, tmp_path / "out", "onnx-int8,torch-int8", teacher_dir=teacher, calibration_dataset=dataset
    )
    assert [row["name"] for row in results["variants"]] == ["fp32", "teacher", "onnx-int8", "torch-int8"]
    assert results["main_metric"] == "accuracy"
    for row in results["variants"]:
        assert set(row["latency_ms"]) == {"batch_1", "batch_4"}
        assert row["size_bytes"] > 0 and row["param_memory_bytes"] > 0
        assert 0.0 <= row["metrics"]["accuracy"] <= 1.0
    for row in results["variants"][2:]:
        assert row["verification"]["prediction_agreement"] >= 0.9
        stored = json.loads((Path(row["path"]) / "verification.json").read_text())
        assert stored["prediction_agreement"] == row["verification"]["prediction_agreement"]
        assert row["deltas"]["size_ratio"] < 1.0
    assert results["variants"][0]["deltas"]["metric_points"] == 0.0
    for name in ("results.json", "REPORT.md", "pareto.png"):
        assert (tmp_path / "out" / name).is_file()
    assert json.loads((tmp_path / "out" / "results.json").read_text())["variants"][3]["name"] == "torch-int8"


def sabotage(name: str):
    """A load_variant that breaks the `name` variant: its head then predicts label 0 everywhere."""

    def load(directory, device=None):
        model = load_variant(directory, device)
        if Path(directory).name == name:
            model.classifier.weight.data.zero_()
            model.classifier.bias.data.copy_(torch.tensor([10.0, 0.0, 0.0, 0.0, 0.0]))
        return model

    return load


def test_a_variant_losing_more_than_allowed_raises_after_writing_the_report(setup, tmp_path, monkeypatch):
    monkeypatch.setattr(workflow, "load_variant", sabotage("torch-int8"))
    with pytest.raises(MetricDropError, match=r"variant 'torch-int8' lost \d+\.\d+ accuracy points") as error:
        run(setup, tmp_path / "out", ["torch-int8"], max_metric_drop=1.0)
    violations = error.value.results["violations"]
    assert [item["variant"] for item in violations] == ["torch-int8"]
    assert violations[0]["drop_points"] > 1.0
    assert "FAILED" in (tmp_path / "out" / "REPORT.md").read_text()
    assert json.loads((tmp_path / "out" / "results.json").read_text())["violations"] == violations


def test_drop_within_the_allowance_passes(setup, tmp_path):
    results = run(setup, tmp_path / "out", ["torch-int8"], max_metric_drop=100.0)
    assert results["violations"] == []


def test_unknown_method_fails_before_any_work(setup, tmp_path):
    with pytest.raises(ValueError, match="Valid methods"):
        run(setup, tmp_path / "out", "torch-int8,fp8")
    assert not (tmp_path / "out").exists()


def test_existing_variant_directory_fails_before_any_work(setup, tmp_path):
    (tmp_path / "out" / "torch-int8").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="overwrite"):
        run(setup, tmp_path / "out", ["torch-int8"])
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["torch-int8"]


def test_static_quantization_without_calibration_data_fails_before_any_work(setup, tmp_path):
    with pytest.raises(CalibrationDataError, match="no calibration data was given"):
        run(setup, tmp_path / "out", ["torch-int8", "onnx-int8-static"])
    assert not (tmp_path / "out").exists()


def test_method_lists_and_main_metric_choice():
    assert parse_methods(" onnx-int8, bnb-8bit,,onnx-int8 ") == ["onnx-int8", "bnb-8bit"]
    assert choose_main_metric({"accuracy": 0.9, "f1": 0.8, "precision": 0.7}) == "f1"
    assert choose_main_metric({"pearson": 0.9, "spearmanr": 0.8, "combined_score": 0.85}) == "combined_score"
    assert choose_main_metric({"accuracy": 0.9}, "accuracy") == "accuracy"
    with pytest.raises(ValueError, match="not among the computed metrics"):
        choose_main_metric({"accuracy": 0.9}, "f1")
