"""`quantize_and_evaluate`, the call the CLI and the recipes share: every method, measured the same way,
compared with the fp32 student on its own device, reported, and gated by `max_metric_drop`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import requires_onnx
from quantization_helpers import save_tiny_model, tokenized_dataset
from transformers import DataCollatorForTokenClassification, EvalPrediction

import hfkdq.quantization.bnb as bnb
import hfkdq.quantization.workflow as workflow
from hfkdq.quantization import (
    METHODS,
    CalibrationDataError,
    MetricDropError,
    load_variant,
    method_device,
    normalize_device,
    quantize_and_evaluate,
)
from hfkdq.quantization.workflow import choose_main_metric, parse_methods, reference_devices
from hfkdq.report import deltas

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


@requires_onnx
def test_every_variant_is_measured_reported_and_verified(setup, tmp_path):
    student, teacher, dataset, _ = setup
    results = run(
        setup, tmp_path / "out", "onnx-int8,torch-int8", teacher_dir=teacher, calibration_dataset=dataset
    )
    assert [row["name"] for row in results["variants"]] == ["fp32", "teacher", "onnx-int8", "torch-int8"]
    assert [row["device"] for row in results["variants"]] == ["cpu"] * 4  # one machine, one reference
    assert "device" not in results["latency"]  # each row says where it was timed
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


def nan_logits(name: str):
    """A load_variant that breaks the `name` variant the way an overflow does: its head outputs NaN."""

    def load(directory, device=None):
        model = load_variant(directory, device)
        if Path(directory).name == name:
            model.classifier.weight.data.fill_(float("nan"))
        return model

    return load


def accuracy_or_nan(prediction: EvalPrediction) -> dict[str, float]:
    """Token accuracy, NaN when the logits are not finite (as a metric of a broken model can be)."""
    if not np.isfinite(prediction.predictions).all():
        return {"accuracy": float("nan")}
    return token_accuracy(prediction)


def test_a_variant_whose_drop_is_nan_fails_the_gate_after_writing_the_report(setup, tmp_path, monkeypatch):
    """`nan > allowed` is false: a gate that only compares would pass the most broken variant of all.
    (A variant losing real points fails it too: tests/test_cli_quantize.py, through the command line.)"""
    student, _, dataset, collator = setup
    monkeypatch.setattr(workflow, "load_variant", nan_logits("torch-int8"))
    with pytest.raises(
        MetricDropError, match="variant 'torch-int8' has a measured accuracy drop of nan"
    ) as error:
        quantize_and_evaluate(
            student,
            ["torch-int8"],
            tmp_path / "out",
            dataset,
            collator,
            accuracy_or_nan,
            max_metric_drop=100.0,
            **FAST,
        )
    violations = error.value.results["violations"]
    assert [(item["variant"], item["drop_points"]) for item in violations] == [("torch-int8", None)]
    assert "FAILED" in (tmp_path / "out" / "REPORT.md").read_text()
    assert json.loads((tmp_path / "out" / "results.json").read_text())["violations"] == violations


def test_drop_within_the_allowance_passes(setup, tmp_path):
    results = run(setup, tmp_path / "out", ["torch-int8"], max_metric_drop=100.0)
    assert results["violations"] == []


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), -0.5])
def test_a_threshold_that_would_switch_the_gate_off_fails_before_any_work(setup, tmp_path, threshold):
    with pytest.raises(ValueError, match="max_metric_drop must be a finite number"):
        run(setup, tmp_path / "out", ["torch-int8"], max_metric_drop=threshold)
    assert not (tmp_path / "out").exists()


def test_unknown_method_fails_before_any_work(setup, tmp_path):
    with pytest.raises(ValueError, match="Valid methods"):
        run(setup, tmp_path / "out", "torch-int8,fp8")
    assert not (tmp_path / "out").exists()


def test_existing_variant_directory_fails_before_any_work(setup, tmp_path):
    (tmp_path / "out" / "torch-int8").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="overwrite"):
        run(setup, tmp_path / "out", ["torch-int8"])
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["torch-int8"]


@requires_onnx
def test_static_quantization_without_calibration_data_fails_before_any_work(setup, tmp_path):
    with pytest.raises(CalibrationDataError, match="no calibration data was given"):
        run(setup, tmp_path / "out", ["torch-int8", "onnx-int8-static"])
    assert not (tmp_path / "out").exists()


def test_each_method_says_which_device_its_variant_runs_on(monkeypatch):
    """bitsandbytes goes where it is fast (CUDA when visible, or where told); ONNX Runtime (CPU provider)
    and torch-int8 kernels run on the CPU."""
    monkeypatch.setattr(bnb, "default_device", lambda: "cuda")
    assert method_device("bnb-8bit") == method_device("bnb-4bit-fp4") == "cuda:0"
    assert method_device("bnb-4bit", {"device": "cpu"}) == "cpu"
    assert (
        method_device("onnx-int8")
        == method_device("onnx-int8-static")
        == method_device("torch-int8")
        == "cpu"
    )
    monkeypatch.setattr(bnb, "default_device", lambda: "cpu")
    assert method_device("bnb-8bit") == "cpu"
    assert [normalize_device(d) for d in ("cpu", "cuda", "cuda:1")] == ["cpu", "cuda:0", "cuda:1"]


def test_the_fp32_reference_is_measured_on_every_device_a_variant_uses_cpu_first():
    assert reference_devices(["cuda:0", "cpu", "cuda:0"]) == ["cpu", "cuda:0"]
    assert reference_devices(["cuda:0", "cuda:0"]) == ["cuda:0"]  # bnb only, on a GPU machine
    assert reference_devices(["cpu"]) == reference_devices([]) == ["cpu"]


FAKE_LATENCY_MS = {("fp32", "cpu"): 10.0, ("fp32", "cuda:0"): 2.0, ("onnx-fp32", "cpu"): 5.0}
FAKE_LATENCY_MS[("torch-int8", "cuda:0")] = 1.0


@pytest.fixture
def fake_gpu(setup, monkeypatch):
    """torch-int8 claims to run on "cuda:0" while this CPU machine runs it on the CPU.

    Models are tagged with the device they were loaded for, which is what the workflow then reads back;
    the fp32 student loaded "on the GPU" has a broken head (predicts label 0), so a comparison with it
    cannot be mistaken for one with the CPU reference, and latencies are fixed per (row, device).
    """
    student = setup[0]
    monkeypatch.setitem(METHODS, "torch-int8", dataclasses.replace(METHODS["torch-int8"], device="cuda"))
    loads = []

    def load(directory, device=None):
        loads.append((Path(directory).name, device))
        model = load_variant(directory)
        if Path(directory) == student and device == "cuda:0":
            model.classifier.weight.data.zero_()
            model.classifier.bias.data.copy_(torch.tensor([10.0, 0.0, 0.0, 0.0, 0.0]))
        model.fake_device = device
        return model

    def costs(model, directory, *args):
        name = "fp32" if Path(directory) == student else Path(directory).name
        latency = FAKE_LATENCY_MS[(name, model.fake_device)]
        return {"size_bytes": 1, "param_memory_bytes": 1, "latency_ms": {"batch_1": latency}}

    monkeypatch.setattr(workflow, "load_variant", load)
    monkeypatch.setattr(workflow, "runtime_device", lambda model: model.fake_device)
    monkeypatch.setattr(workflow, "measure_costs", costs)
    return loads


@requires_onnx
def test_a_variant_is_compared_with_the_fp32_student_on_its_own_device(setup, tmp_path, fake_gpu):
    results = run(setup, tmp_path / "out", "onnx-fp32,torch-int8")
    rows = results["variants"]
    cpu_fp32, gpu_fp32, onnx, int8 = rows
    assert [(row["name"], row["device"]) for row in rows] == [
        ("fp32", "cpu"),
        ("fp32", "cuda:0"),
        ("onnx-fp32", "cpu"),
        ("torch-int8", "cuda:0"),
    ]
    assert fake_gpu == [
        ("student", "cpu"),
        ("student", "cuda:0"),
        ("onnx-fp32", "cpu"),
        ("torch-int8", "cuda:0"),
    ]
    assert cpu_fp32["metrics"] != gpu_fp32["metrics"], "precondition: the two references are told apart"

    assert int8["deltas"]["speedup_batch_1"] == 2.0  # 2 ms fp32 on the GPU / 1 ms, not 10 ms / 1 ms
    assert int8["deltas"] == deltas(int8, gpu_fp32, "accuracy")
    assert int8["deltas"]["metric_points"] == pytest.approx(
        100 * (int8["metrics"]["accuracy"] - gpu_fp32["metrics"]["accuracy"])
    )
    assert onnx["deltas"]["speedup_batch_1"] == 2.0  # 10 ms fp32 on the CPU / 5 ms
    assert onnx["deltas"] == deltas(onnx, cpu_fp32, "accuracy")
    assert onnx["verification"]["prediction_agreement"] == pytest.approx(1.0)  # same model, same device
    assert int8["verification"]["prediction_agreement"] < 0.9  # vs the broken GPU reference
    stored = json.loads((Path(int8["path"]) / "verification.json").read_text())
    assert stored["prediction_agreement"] == int8["verification"]["prediction_agreement"]
    assert gpu_fp32["deltas"]["metric_points"] == 0.0 and gpu_fp32["deltas"]["speedup_batch_1"] == 1.0

    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert "| Device |" in report
    assert "| fp32 (reference) | " in report and report.count("(reference)") == 2
    int8_line = next(line for line in report.splitlines() if line.startswith("| torch-int8 |"))
    assert "| cuda:0 | 1.00 | – | 2.00× | – |" in int8_line  # device, latency b1/b32, speed-up b1/b32


def test_method_lists_and_main_metric_choice():
    assert parse_methods(" torch-int8, bnb-8bit,,torch-int8 ") == ["torch-int8", "bnb-8bit"]
    assert choose_main_metric({"accuracy": 0.9, "f1": 0.8, "precision": 0.7}) == "f1"
    assert choose_main_metric({"pearson": 0.9, "spearmanr": 0.8, "combined_score": 0.85}) == "combined_score"
    assert choose_main_metric({"accuracy": 0.9}, "accuracy") == "accuracy"
    with pytest.raises(ValueError, match="not among the computed metrics"):
        choose_main_metric({"accuracy": 0.9}, "f1")
