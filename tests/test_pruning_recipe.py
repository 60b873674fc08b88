"""Pruning inside a recipe run: distil -> prune -> recover from the teacher's cache -> quantize -> load."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import TEST_DATA, ForwardCounter, import_script, requires_onnx, tiny_ner_task, tiny_token_models
from transformers import AutoModelForTokenClassification

from hfkdq import DistillationArguments
from hfkdq.pruning import prune_model
from hfkdq.pruning.recovery import recover
from hfkdq.teacher_cache import build_teacher_cache

CONFIG = str(TEST_DATA / "ner_recipe_tiny.yaml")
LOGITS_ONLY = ("--hidden_weight", "0", "--attention_weight", "0")


def flags(teacher, output_dir, *extra: str) -> list[str]:
    return [
        CONFIG,
        "--teacher_name_or_path",
        str(teacher),
        "--output_dir",
        str(output_dir),
        *LOGITS_ONLY,
        *extra,
    ]


@pytest.fixture(scope="module")
def recipe():
    return import_script("recipes/distill_bert_ner.py")


def _recipe_round_trip(recipe, teacher_dir, output_dir, method):
    results = recipe.main(
        flags(
            teacher_dir,
            output_dir,
            "--teacher_cache",
            "auto",
            "--prune_ffn_keep",
            "0.5",
            "--prune_importance_samples",
            "16",
            "--quantize",
            method,
            "--max_metric_drop",
            "100",
        )
    )
    saved = json.loads((output_dir / "results.json").read_text())
    teacher_width = json.loads((teacher_dir / "config.json").read_text())["intermediate_size"]
    pruned = AutoModelForTokenClassification.from_pretrained(output_dir / "student")
    unpruned = AutoModelForTokenClassification.from_pretrained(output_dir / "unpruned-student")
    assert unpruned.config.intermediate_size == teacher_width
    assert pruned.config.intermediate_size == teacher_width // 2 == saved["pruning"]["width"]
    assert saved["pruning"]["recovery"]["from_teacher_cache"] is True
    assert (
        saved["unpruned_student"]["metrics"].keys()
        == saved["student"]["metrics"].keys()
        == {"validation", "test"}
    )
    assert results["quantization"]["model_dir"] == str(output_dir / "student"), (
        "the pruned student is quantized"
    )
    return pruned


def test_a_recipe_prunes_after_distilling_recovers_and_quantizes_the_pruned_student(
    recipe, tiny_teacher_dir, tmp_path
):
    from hfkdq.quantization import load_variant

    output_dir = tmp_path / "run"
    pruned = _recipe_round_trip(recipe, tiny_teacher_dir, output_dir, "torch-int8")
    variant = load_variant(output_dir / "quantized" / "torch-int8")
    ids = torch.tensor([[101, 7592, 2088, 102]])
    assert variant(input_ids=ids).logits.shape == pruned(input_ids=ids).logits.shape


@requires_onnx
def test_prune_recover_export_onnx_load_round_trip(recipe, tiny_teacher_dir, tmp_path, minilm_tokenizer):
    from optimum.onnxruntime import ORTModelForTokenClassification

    output_dir = tmp_path / "run"
    pruned = _recipe_round_trip(recipe, tiny_teacher_dir, output_dir, "onnx-int8")
    onnx = ORTModelForTokenClassification.from_pretrained(output_dir / "quantized" / "onnx-int8")
    inputs = minilm_tokenizer(["Barack Obama visited Paris"], return_tensors="pt")
    with torch.no_grad():
        reference = pruned.eval()(**inputs).logits
    logits = onnx(**inputs).logits
    assert logits.shape == reference.shape
    assert (logits.argmax(-1) == reference.argmax(-1)).float().mean() >= 0.8


@pytest.mark.parametrize("keep", ["0", "1.5", "nan", "-0.5", "inf", "0.001"])
def test_a_bad_prune_share_fails_before_any_work(recipe, tiny_teacher_dir, tmp_path, keep):
    output_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="--ffn_keep") as error:
        recipe.main(flags(tiny_teacher_dir, output_dir, "--prune_ffn_keep", keep))
    assert "\n" not in str(error.value)
    assert not output_dir.exists()


@pytest.fixture(scope="module")
def task(minilm_tokenizer):
    return tiny_ner_task(minilm_tokenizer, "btc", train_sentences=24, eval_sentences=8)


def _recover(task, tokenizer, tmp_path, cache):
    teacher, student = tiny_token_models(task.label_names, seed=3)
    if cache == "build":
        cache = build_teacher_cache(teacher, task.train_dataset, task.data_collator, tmp_path / "cache")
    prune_model(student, 0.5, task.train_dataset, task.data_collator, max_samples=8)
    counter = ForwardCounter(teacher)
    args = DistillationArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=3,
        per_device_train_batch_size=8,
        report_to=[],
        use_cpu=True,
    )
    trainer = recover(
        student,
        teacher,
        args,
        task.train_dataset,
        task.data_collator,
        processing_class=tokenizer,
        teacher_cache=cache,
    )
    assert trainer.state.global_step == 3
    assert not (tmp_path / "out" / "prune-recovery-training").exists()
    return counter.calls


def test_recovery_from_the_teacher_cache_runs_no_teacher_forward(task, minilm_tokenizer, tmp_path):
    assert _recover(task, minilm_tokenizer, tmp_path / "cached", "build") == 0
    # the same recovery with the live teacher runs it every step, so the count above is meaningful
    assert _recover(task, minilm_tokenizer, tmp_path / "live", None) == 3


def test_keep_share_validation_is_the_pruner_s(recipe):
    from hfkdq.arguments import StudentArguments

    assert StudentArguments(prune_ffn_keep=1.0).prune_ffn_keep == 1.0
    with pytest.raises(ValueError, match="--ffn_keep must be a fraction"):
        StudentArguments(prune_ffn_keep=math.nan)
    with pytest.raises(ValueError, match="unknown --importance"):
        StudentArguments(prune_ffn_keep=0.5, prune_importance="random")
