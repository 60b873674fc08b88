"""Verification compares a variant's logits with the fp32 student's: difference and argmax agreement,
over real tokens only for token classification, stored as verification.json beside the variant."""

from __future__ import annotations

import json

import numpy as np
import pytest
from quantization_helpers import save_tiny_model, tokenized_dataset
from transformers import DataCollatorWithPadding

from hfkdq.evaluation import Predictions
from hfkdq.quantization import load_variant, quantize
from hfkdq.quantization.verify import compare_predictions, verify, write_verification


def predictions(logits, mask=None) -> Predictions:
    logits = np.asarray(logits, dtype=np.float32)
    if mask is None:
        mask = np.ones(logits.shape[:2] if logits.ndim == 3 else logits.shape[:1], dtype=np.int64)
    return Predictions(logits=logits, label_ids=None, attention_mask=np.asarray(mask))


def test_identical_logits_agree_fully():
    logits = np.random.default_rng(0).normal(size=(6, 3))
    report = compare_predictions(predictions(logits), predictions(logits.copy()))
    assert report == {
        "max_abs_logit_diff": 0.0,
        "mean_abs_logit_diff": 0.0,
        "prediction_agreement": 1.0,
        "compared": 6,
        "compared_unit": "examples",
    }


def test_sequence_agreement_counts_changed_argmax():
    reference = predictions([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    candidate = predictions([[2.0, 0.5], [0.0, 2.0], [0.0, 1.0], [0.0, 1.0]])
    report = compare_predictions(reference, candidate)
    assert report["prediction_agreement"] == 0.75
    assert report["max_abs_logit_diff"] == pytest.approx(1.0)
    assert report["mean_abs_logit_diff"] == pytest.approx(2.5 / 8)


def test_token_agreement_ignores_padding():
    reference = np.zeros((1, 4, 2), dtype=np.float32)
    reference[..., 0] = 1.0  # every position predicts label 0
    candidate = reference.copy()
    candidate[0, 3] = [0.0, 9.0]  # a different prediction, but on padding
    mask = np.array([[1, 1, 1, 0]])
    report = compare_predictions(predictions(reference, mask), predictions(candidate, mask))
    assert report["prediction_agreement"] == 1.0
    assert report["max_abs_logit_diff"] == 0.0
    assert (report["compared"], report["compared_unit"]) == (3, "tokens")


def test_regression_head_has_no_agreement():
    report = compare_predictions(predictions([[0.5], [1.5]]), predictions([[0.6], [1.5]]))
    assert report["prediction_agreement"] is None
    assert report["max_abs_logit_diff"] == pytest.approx(0.1, abs=1e-6)


def test_logits_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="same dataset"):
        compare_predictions(predictions(np.zeros((3, 2))), predictions(np.zeros((4, 2))))


def test_verify_runs_both_models_and_writes_verification_json(minilm_tokenizer, tmp_path):
    student = save_tiny_model(tmp_path / "student", minilm_tokenizer, head="token", num_labels=5)
    variant = quantize(student, "torch-int8", tmp_path / "int8")
    dataset = tokenized_dataset(minilm_tokenizer, "token", num_labels=5)
    collator = DataCollatorWithPadding(minilm_tokenizer)
    report = verify(load_variant(student), load_variant(variant), dataset.remove_columns("labels"), collator)
    assert report["compared"] == sum(len(ids) for ids in dataset["input_ids"])
    assert report["prediction_agreement"] >= 0.9
    path = write_verification(variant, report, reference=student)
    stored = json.loads(path.read_text())
    assert path.name == "verification.json" and path.parent == variant
    assert stored["reference_model"] == str(student.resolve())
    assert stored["prediction_agreement"] == report["prediction_agreement"]
