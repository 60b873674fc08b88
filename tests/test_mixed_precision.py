"""Mixed-precision ONNX int8: the search keeps the MatMuls int8 hurts in fp32 until the drop fits the budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import requires_onnx
from quantization_helpers import TEXTS, save_tiny_model
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

from hfkdq.evaluation import evaluate
from hfkdq.quantization.artifacts import inspect_model_dir, read_metadata

pytestmark = requires_onnx

SABOTAGED_NODE_HINT = "classifier"


def _accuracy(prediction) -> dict[str, float]:
    logits, labels = prediction.predictions, prediction.label_ids
    real = labels != -100
    return {"accuracy": float((logits.argmax(-1)[real] == labels[real]).mean())}


@pytest.fixture(scope="module")
def sabotaged(tmp_path_factory, minilm_tokenizer):
    """A tiny token classifier whose classifier input has one huge channel that its weights ignore.

    In fp32 the channel changes nothing; dynamic int8 quantizes the classifier's input per tensor, so
    the huge range rounds every other channel away and the predictions collapse. Only the classifier
    MatMul is hurt, which is what the search must find. Labels are the fp32 model's own predictions,
    so the fp32 accuracy is 1.0 and any change is a drop.
    """
    directory = save_tiny_model(
        tmp_path_factory.mktemp("mixed") / "student", minilm_tokenizer, head="token", num_labels=5
    )
    model = AutoModelForTokenClassification.from_pretrained(directory).eval()
    with torch.no_grad():
        norm = model.bert.encoder.layer[-1].output.LayerNorm
        norm.weight[0], norm.bias[0] = 0.0, 5000.0
        model.classifier.weight[:, 0] = 0.0
    model.save_pretrained(directory)
    from datasets import Dataset

    texts = [f"{text} {other}" for text in TEXTS for other in TEXTS]
    encoded = minilm_tokenizer(texts, truncation=True, max_length=48)
    collator = DataCollatorForTokenClassification(minilm_tokenizer)
    dataset = Dataset.from_dict({**encoded, "labels": [[0] * len(ids) for ids in encoded["input_ids"]]})
    with torch.no_grad():
        labels = []
        for row in dataset:
            ids = torch.tensor([row["input_ids"]])
            labels.append(model(input_ids=ids).logits[0].argmax(-1).tolist())
    dataset = dataset.remove_columns("labels").add_column("labels", labels)
    return directory, dataset, collator


def _search(sabotaged, output: Path, budget: float):
    from hfkdq.quantization.mixed_precision import search_mixed_precision

    directory, dataset, collator = sabotaged
    return search_mixed_precision(
        inspect_model_dir(directory),
        output,
        eval_dataset=dataset,
        data_collator=collator,
        compute_metrics=_accuracy,
        main_metric="accuracy",
        reference_metric=1.0,
        max_metric_drop=budget,
        sensitivity_samples=32,
    )


def test_a_budget_full_int8_misses_is_met_by_keeping_the_sensitive_matmul_in_fp32(sabotaged, tmp_path):
    from hfkdq.quantization import quantize
    from hfkdq.quantization.onnx import load_onnx

    directory, dataset, collator = sabotaged
    full = load_onnx(quantize(directory, "onnx-int8", tmp_path / "full"), "token")
    full_drop = 100 * (1 - evaluate(full, dataset, collator, _accuracy).metrics["accuracy"])
    budget = 5.0
    assert full_drop > budget  # the sabotage works: full int8 misses the budget

    variant = _search(sabotaged, tmp_path / "mixed", budget)
    record = read_metadata(variant)["mixed_precision"]
    kept_fp32 = record["nodes_in_fp32"]
    assert kept_fp32 and all(node in record["sensitivity"]["by_node"] for node in kept_fp32)
    assert record["nodes_in_int8"], "a fallback that keeps every node in fp32 found nothing mixed"
    ranked = sorted(record["sensitivity"]["by_node"].items(), key=lambda item: -item[1])
    assert SABOTAGED_NODE_HINT in ranked[0][0].lower()  # the sabotaged MatMul is measured the most sensitive
    assert kept_fp32 == [name for name, _ in ranked[: len(kept_fp32)]]
    assert record["full_int8_metric_drop"] == pytest.approx(full_drop)
    # the written variant itself is within the budget, measured again from the directory
    loaded = load_onnx(variant, "token")
    drop = 100 * (1 - evaluate(loaded, dataset, collator, _accuracy).metrics["accuracy"])
    assert drop <= budget and drop == pytest.approx(record["metric_drop"])
    assert read_metadata(variant)["options"]["nodes_to_exclude"] == kept_fp32


def test_a_budget_even_fp32_cannot_meet_is_said_and_writes_nothing(sabotaged, tmp_path, monkeypatch):
    from hfkdq.quantization import mixed_precision

    # An fp32 reference the ONNX export cannot reach (accuracy 1.0 is the best there is): a budget no search
    # can meet, whatever is kept in fp32.
    directory, dataset, collator = sabotaged
    with pytest.raises(
        mixed_precision.BudgetUnreachableError, match="no mixed-precision variant can meet"
    ) as error:
        mixed_precision.search_mixed_precision(
            inspect_model_dir(directory),
            tmp_path / "mixed",
            eval_dataset=dataset,
            data_collator=collator,
            compute_metrics=_accuracy,
            main_metric="accuracy",
            reference_metric=1.5,
            max_metric_drop=10.0,
        )
    assert "\n" not in str(error.value)
    assert not (tmp_path / "mixed").exists()


@pytest.mark.parametrize("budget", [-1.0, float("nan"), float("inf")])
def test_a_budget_that_is_not_a_finite_non_negative_number_is_refused_before_any_work(
    sabotaged, tmp_path, budget
):
    with pytest.raises(ValueError, match="max_metric_drop must be a finite number"):
        _search(sabotaged, tmp_path / "mixed", budget)
    assert not (tmp_path / "mixed").exists()


def test_sensitivity_lists_every_weight_matmul_and_embedding(sabotaged, tmp_path):
    from hfkdq.quantization.mixed_precision import weight_nodes
    from hfkdq.quantization.onnx import export

    directory, _, _ = sabotaged
    onnx_path = export(inspect_model_dir(directory), tmp_path / "export")
    nodes = weight_nodes(onnx_path)
    matmuls = [node for node in nodes if "MatMul" in node]
    # 2 layers x (query, key, value, attention output, FFN up, FFN down) + the classifier
    assert len(matmuls) == 2 * 6 + 1
    assert np.all([("Gather" in node) or ("MatMul" in node) for node in nodes])


def test_quantize_falls_back_to_mixed_precision_when_onnx_int8_misses_the_budget(sabotaged, tmp_path):
    from hfkdq.quantization.errors import MetricDropError
    from hfkdq.quantization.workflow import quantize_and_evaluate

    directory, dataset, collator = sabotaged
    common = dict(max_metric_drop=5.0, main_metric="accuracy", latency_repeats=0)
    with pytest.raises(MetricDropError, match="onnx-int8"):
        quantize_and_evaluate(
            directory, "onnx-int8", tmp_path / "strict", dataset, collator, _accuracy, **common
        )
    results = quantize_and_evaluate(
        directory,
        "onnx-int8",
        tmp_path / "mixed",
        dataset,
        collator,
        _accuracy,
        mixed_precision=True,
        **common,
    )
    rows = {row["name"]: row for row in results["variants"]}
    assert (
        -rows["onnx-int8"]["deltas"]["metric_points"]
        > 5.0
        >= -rows["onnx-int8-mixed"]["deltas"]["metric_points"]
    )
    assert results["mixed_precision"]["found"] and results["mixed_precision"]["replaces"] == "onnx-int8"
    assert results["violations"] == []
    assert read_metadata(tmp_path / "mixed" / "onnx-int8-mixed")["method"] == "onnx-int8"


def test_mixed_precision_needs_a_budget_and_onnx_int8(sabotaged, tmp_path):
    from hfkdq.quantization.workflow import quantize_and_evaluate

    directory, dataset, collator = sabotaged
    with pytest.raises(ValueError, match="--mixed_precision searches"):
        quantize_and_evaluate(
            directory, "onnx-int8", tmp_path / "q", dataset, collator, _accuracy, mixed_precision=True
        )
    assert not (tmp_path / "q" / "onnx-int8").exists()
