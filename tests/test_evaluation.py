"""The shared evaluation loop and cost measurements: any variant, same batches, same metric code."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import requires_onnx
from quantization_helpers import save_tiny_model, tokenized_dataset
from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding, EvalPrediction

import hfkdq.evaluation as evaluation
from hfkdq.evaluation import (
    evaluate,
    measure_costs,
    measure_latency,
    model_device,
    model_input_names,
    parameter_memory_bytes,
    predict,
    runtime_device,
    weights_size_bytes,
)
from hfkdq.quantization import load_variant, quantize


@pytest.fixture(scope="module")
def token_student(tmp_path_factory, minilm_tokenizer) -> Path:
    return save_tiny_model(
        tmp_path_factory.mktemp("eval") / "token", minilm_tokenizer, head="token", num_labels=5
    )


@pytest.fixture(scope="module")
def sequence_student(tmp_path_factory, minilm_tokenizer) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("eval") / "sequence", minilm_tokenizer)


def accuracy_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """A stand-in for the training code's compute_metrics: token/sequence accuracy, ignoring -100."""
    predicted = prediction.predictions.argmax(-1)
    keep = prediction.label_ids != -100
    return {"eval_accuracy": float((predicted[keep] == prediction.label_ids[keep]).mean())}


def test_token_logits_are_padded_across_batches_of_different_lengths(token_student, minilm_tokenizer):
    model = load_variant(token_student)
    dataset = tokenized_dataset(minilm_tokenizer, "token", num_labels=5)
    collator = DataCollatorForTokenClassification(minilm_tokenizer)
    result = predict(model, dataset, collator, batch_size=3)
    longest = max(len(ids) for ids in dataset["input_ids"])
    assert result.logits.shape == (len(dataset), longest, 5)
    for index, example in enumerate(dataset):
        length = len(example["input_ids"])
        with torch.inference_mode():
            alone = model(input_ids=torch.tensor([example["input_ids"]])).logits[0].numpy()
        np.testing.assert_allclose(result.logits[index, :length], alone, atol=1e-5)
        assert result.attention_mask[index].sum() == length
        assert (result.label_ids[index, length:] == -100).all()
        assert result.label_ids[index, :length].tolist() == example["labels"]


def test_evaluate_scores_with_the_given_compute_metrics(token_student, minilm_tokenizer):
    model = load_variant(token_student)
    dataset = tokenized_dataset(minilm_tokenizer, "token", num_labels=5)
    collator = DataCollatorForTokenClassification(minilm_tokenizer)
    seen = []

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        seen.append(prediction)
        return accuracy_metrics(prediction)

    result = evaluate(model, dataset, collator, compute_metrics, batch_size=4)
    assert len(seen) == 1 and isinstance(seen[0], EvalPrediction)
    assert set(result.metrics) == {"accuracy"}  # Trainer's eval_ prefix is dropped
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    assert result.metrics == {
        "accuracy": accuracy_metrics(EvalPrediction(result.predictions.logits, result.predictions.label_ids))[
            "eval_accuracy"
        ]
    }


def test_evaluation_needs_labels_and_examples(sequence_student, minilm_tokenizer):
    model = load_variant(sequence_student)
    dataset = tokenized_dataset(minilm_tokenizer, "sequence")
    collator = DataCollatorWithPadding(minilm_tokenizer)
    with pytest.raises(ValueError, match="no 'labels' column"):
        evaluate(model, dataset.remove_columns("labels"), collator, accuracy_metrics)
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, dataset.select([]), collator, accuracy_metrics)


@requires_onnx
def test_one_loop_runs_pytorch_and_onnx_runtime_alike(sequence_student, minilm_tokenizer, tmp_path):
    dataset = tokenized_dataset(minilm_tokenizer, "sequence")
    collator = DataCollatorWithPadding(minilm_tokenizer)
    torch_result = evaluate(load_variant(sequence_student), dataset, collator, accuracy_metrics)
    onnx_model = load_variant(quantize(sequence_student, "onnx-fp32", tmp_path / "onnx"))
    onnx_result = evaluate(onnx_model, dataset, collator, accuracy_metrics)
    np.testing.assert_allclose(onnx_result.predictions.logits, torch_result.predictions.logits, atol=1e-4)
    assert onnx_result.metrics == torch_result.metrics
    assert runtime_device(onnx_model) == runtime_device(load_variant(sequence_student)) == "cpu"


def test_an_onnx_session_on_cuda_is_reported_on_cuda_though_its_inputs_stay_on_the_cpu(monkeypatch):
    """ONNX Runtime copies CPU inputs itself, but its latency is the execution provider's device's."""
    session = type("CudaSession", (), {"device": torch.device("cuda", 0)})()
    monkeypatch.setattr(evaluation, "is_onnx_model", lambda model: model is session)
    assert model_device(session) == torch.device("cpu")
    assert runtime_device(session) == "cuda:0"


def test_inputs_a_model_does_not_take_are_not_fed(minilm_tokenizer, tmp_path):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(vocab_size=30522, dim=32, hidden_dim=64, n_layers=1, n_heads=2, num_labels=3)
    model = DistilBertForSequenceClassification(config).eval()
    assert model_input_names(model) == {"input_ids", "attention_mask"}
    dataset = tokenized_dataset(minilm_tokenizer, "sequence")
    assert "token_type_ids" in dataset.column_names
    result = predict(model, dataset, DataCollatorWithPadding(minilm_tokenizer))
    assert result.logits.shape == (len(dataset), 3)


def test_size_on_disk_counts_weight_files_only(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"w" * 1000)
    (tmp_path / "model.onnx").write_bytes(b"o" * 300)
    (tmp_path / "quantized_state_dict.pt").write_bytes(b"p" * 20)
    (tmp_path / "tokenizer.json").write_bytes(b"t" * 5000)
    (tmp_path / "config.json").write_bytes(b"c" * 50)
    assert weights_size_bytes(tmp_path) == 1320


def test_parameter_memory_of_pytorch_models(sequence_student, tmp_path):
    fp32 = load_variant(sequence_student)
    fp32_bytes = sum(p.numel() * 4 for p in fp32.parameters()) + sum(
        b.numel() * b.element_size() for b in fp32.buffers()
    )
    assert parameter_memory_bytes(fp32) == fp32_bytes
    int8 = load_variant(quantize(sequence_student, "torch-int8", tmp_path / "int8"))
    linear = sum(
        m.weight.numel() * 4
        for n, m in fp32.named_modules()
        if isinstance(m, torch.nn.Linear) and n != "classifier"
    )
    assert (
        fp32_bytes - parameter_memory_bytes(int8) >= 0.7 * linear
    )  # int8 packed weights are counted at 1 byte


@requires_onnx
def test_parameter_memory_of_an_onnx_runtime_model_is_its_file(sequence_student, tmp_path):
    onnx_dir = quantize(sequence_student, "onnx-int8", tmp_path / "onnx")
    assert parameter_memory_bytes(load_variant(onnx_dir)) == (onnx_dir / "model.onnx").stat().st_size


class CountingModel(torch.nn.Module):
    """Minimal stand-in for a classifier: counts forward calls and checks the input shape."""

    def __init__(self):
        super().__init__()
        self.config = type("Config", (), {"vocab_size": 100})()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.shapes = []

    def forward(self, input_ids, attention_mask=None):
        self.shapes.append(tuple(input_ids.shape))
        return input_ids


def test_latency_is_the_median_of_timed_runs_after_warmup(monkeypatch):
    model = CountingModel()
    durations = iter([0.010, 0.050, 0.020, 0.030, 0.900])  # one outlier
    clock = itertools.count()
    ticks = []

    def fake_clock():
        # start/stop pairs: start at t, stop at t + next duration
        if len(ticks) % 2 == 0:
            ticks.append(float(next(clock)))
        else:
            ticks.append(ticks[-1] + next(durations))
        return ticks[-1]

    monkeypatch.setattr(evaluation.time, "perf_counter", fake_clock)
    median_ms = measure_latency(model, batch_size=32, seq_len=128, repeats=5, warmup=2)
    assert median_ms == pytest.approx(30.0)
    assert model.shapes == [(32, 128)] * 7  # 2 warm-up + 5 timed


def test_latency_measures_a_real_model(sequence_student):
    assert measure_latency(load_variant(sequence_student), batch_size=1, seq_len=16, repeats=2, warmup=1) > 0
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(CountingModel(), batch_size=1, repeats=0)


def test_costs_without_latency(sequence_student):
    costs = measure_costs(load_variant(sequence_student), sequence_student, repeats=0)
    assert costs["latency_ms"] == {}
    assert costs["size_bytes"] == (sequence_student / "model.safetensors").stat().st_size
