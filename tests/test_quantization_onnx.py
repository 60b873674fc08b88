"""ONNX Runtime variants: Optimum export, dynamic and static int8, each a directory that
`ORTModelFor...from_pretrained` loads and `transformers.pipeline` runs, agreeing with the fp32 student."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import requires_onnx
from quantization_helpers import (
    TEXTS,
    agreement,
    encode,
    logits_of,
    save_tiny_model,
    tokenized_dataset,
)
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, pipeline

from hfkdq.quantization import CalibrationDataError, UnsupportedArchitectureError, quantize
from hfkdq.quantization.artifacts import read_metadata
from hfkdq.quantization.onnx import detect_cpu_target

pytestmark = requires_onnx

AGREEMENT = 0.9
"""Minimum argmax agreement with fp32 (random tiny models have near-tied logits, so not 1.0)."""


@pytest.fixture(scope="module")
def students(tmp_path_factory, minilm_tokenizer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx-students")
    return {
        head: save_tiny_model(
            root / head, minilm_tokenizer, head=head, num_labels=5 if head == "token" else 3
        )
        for head in ("sequence", "token")
    }


@pytest.fixture(scope="module")
def dynamic_variants(students, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx-int8")
    return {head: quantize(path, "onnx-int8", root / head) for head, path in students.items()}


def fp32(path: Path, head: str):
    auto = AutoModelForTokenClassification if head == "token" else AutoModelForSequenceClassification
    return auto.from_pretrained(path).eval()


def op_counts(onnx_file: Path) -> Counter[str]:
    """How many nodes of each operator type the graph holds."""
    import onnx

    return Counter(node.op_type for node in onnx.load(onnx_file).graph.node)


def expected_matmuls(model) -> int:
    """MatMuls an exported BERT runs: one per Linear layer, plus the two activation-by-activation
    products of each attention layer (query x key scores, and scores x value)."""
    linears = sum(isinstance(module, torch.nn.Linear) for module in model.modules())
    return linears + 2 * model.config.num_hidden_layers


@pytest.mark.parametrize("head", ["sequence", "token"])
def test_dynamic_int8_loads_with_optimum_and_agrees_with_fp32(
    students, dynamic_variants, minilm_tokenizer, head
):
    from optimum.onnxruntime import ORTModelForSequenceClassification, ORTModelForTokenClassification

    ort_class = ORTModelForTokenClassification if head == "token" else ORTModelForSequenceClassification
    variant = ort_class.from_pretrained(dynamic_variants[head])
    inputs = encode(minilm_tokenizer)
    reference = logits_of(fp32(students[head], head), inputs)
    quantized = logits_of(variant, inputs)
    assert quantized.shape == reference.shape
    assert agreement(reference, quantized, inputs["attention_mask"]) >= AGREEMENT
    assert abs(quantized - reference).max() < 0.1


@pytest.mark.parametrize("head", ["sequence", "token"])
def test_output_directory_is_self_contained(students, dynamic_variants, head):
    out = dynamic_variants[head]
    names = {path.name for path in out.iterdir()}
    assert {
        "model.onnx",
        "config.json",
        "ort_config.json",
        "tokenizer.json",
        "hfkdq_quantization.json",
    } <= names
    assert [name for name in names if name.endswith(".onnx")] == ["model.onnx"]
    source = json.loads((students[head] / "config.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == source["id2label"]
    metadata = read_metadata(out)
    assert metadata["method"] == "onnx-int8"
    assert metadata["options"]["cpu_target"] == detect_cpu_target()
    assert metadata["head"] == head


@pytest.mark.parametrize("head", ["sequence", "token"])
def test_dynamic_int8_quantizes_every_matmul(students, dynamic_variants, head):
    """Each MatMul (and Gemm: the pooler and classifier of the sequence head export as Gemm) becomes
    a MatMulInteger; none is left in float."""
    counts = op_counts(dynamic_variants[head] / "model.onnx")
    assert counts["MatMulInteger"] == expected_matmuls(fp32(students[head], head))
    assert counts["MatMul"] == counts["Gemm"] == 0


def test_int8_onnx_file_is_about_a_quarter_of_fp32(students, dynamic_variants):
    """Dynamic quantization covers MatMul *and* Gather, so the embedding matrix shrinks too."""
    fp32_bytes = (students["sequence"] / "model.safetensors").stat().st_size
    int8_bytes = (dynamic_variants["sequence"] / "model.onnx").stat().st_size
    assert int8_bytes < 0.3 * fp32_bytes


def test_sequence_variant_runs_in_a_text_classification_pipeline(dynamic_variants):
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer

    out = dynamic_variants["sequence"]
    classify = pipeline(
        "text-classification",
        model=ORTModelForSequenceClassification.from_pretrained(out),
        tokenizer=AutoTokenizer.from_pretrained(out),
    )
    predictions = classify(TEXTS[:3])
    assert len(predictions) == 3
    assert all(prediction["label"] in {"L0", "L1", "L2"} for prediction in predictions)


def test_token_variant_runs_in_a_token_classification_pipeline(dynamic_variants):
    from optimum.onnxruntime import ORTModelForTokenClassification
    from transformers import AutoTokenizer

    out = dynamic_variants["token"]
    tag = pipeline(
        "token-classification",
        model=ORTModelForTokenClassification.from_pretrained(out),
        tokenizer=AutoTokenizer.from_pretrained(out),
    )
    text = "Barack Obama visited Paris"
    entities = tag(text)
    # No aggregation and no label named "O": one entity per word piece, special tokens excluded.
    assert [entity["word"] for entity in entities] == tag.tokenizer.tokenize(text)
    assert {entity["entity"] for entity in entities} <= {f"L{i}" for i in range(5)}


def test_named_cpu_target_overrides_detection(students, tmp_path):
    out = quantize(students["sequence"], "onnx-int8", tmp_path / "avx2", cpu_target="avx2", per_channel=False)
    options = read_metadata(out)["options"]
    assert options == {"cpu_target": "avx2", "per_channel": False, "optimize": None}
    quantization = json.loads((out / "ort_config.json").read_text())["quantization"]
    assert quantization["weights_dtype"] == "QUInt8"  # the avx2 preset: u8 weights, no VNNI saturation risk


def test_unknown_cpu_target_is_refused_before_any_work(students, tmp_path):
    with pytest.raises(ValueError, match="avx512_vnni, avx512, avx2, arm64"):
        quantize(students["sequence"], "onnx-int8", tmp_path / "out", cpu_target="avx9000")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("head", ["sequence", "token"])
def test_static_int8_calibrates_on_training_samples(students, minilm_tokenizer, tmp_path, head):
    calibration = tokenized_dataset(minilm_tokenizer, head, num_labels=5 if head == "token" else 3)
    out = quantize(students[head], "onnx-int8-static", tmp_path / "static", calibration_dataset=calibration)
    metadata = read_metadata(out)
    assert metadata["options"]["calibration_samples"] == len(calibration)
    from hfkdq.quantization import load_variant

    inputs = encode(minilm_tokenizer)
    reference = logits_of(fp32(students[head], head), inputs)
    assert agreement(reference, logits_of(load_variant(out), inputs), inputs["attention_mask"]) >= 0.8
    assert not list(Path.cwd().glob("augmented_model*.onnx")), (
        "calibration must not litter the working directory"
    )


def test_static_calibration_draws_the_requested_number_of_samples(students, minilm_tokenizer, tmp_path):
    calibration = tokenized_dataset(minilm_tokenizer, "sequence")
    out = quantize(
        students["sequence"],
        "onnx-int8-static",
        tmp_path / "static",
        calibration_dataset=calibration,
        calibration_samples=3,
    )
    assert read_metadata(out)["options"]["calibration_samples"] == 3


def test_static_without_calibration_data_is_a_clear_error(students, tmp_path):
    with pytest.raises(CalibrationDataError, match="no calibration data was given"):
        quantize(students["sequence"], "onnx-int8-static", tmp_path / "static")
    assert not (tmp_path / "static").exists()


def test_graph_optimisation_of_the_quantized_model(students, minilm_tokenizer, tmp_path):
    """Level-2 fusion of the int8 graph, counted per layer (measured: onnxruntime 1.32, optimum-onnx 0.1).

    Every int8 MatMul fuses with the quantization of its input (DynamicQuantizeMatMul, or
    MatMulIntegerToFloat where one quantized input feeds several, as for query/key/value); each
    feed-forward's erf subgraph becomes one Gelu, and one of each layer's two residual Add +
    LayerNormalization pairs becomes a SkipLayerNormalization (the fp32 graph fuses both, and
    Attention, which the quantized graph keeps unfused).
    """
    model = fp32(students["token"], "token")
    layers = model.config.num_hidden_layers
    out = quantize(students["token"], "onnx-int8", tmp_path / "optimized", optimize=True)
    counts = op_counts(out / "model.onnx")
    assert counts["DynamicQuantizeMatMul"] + counts["MatMulIntegerToFloat"] == expected_matmuls(model)
    assert counts["MatMulInteger"] == counts["MatMul"] == 0
    assert counts["Gelu"] == layers and counts["Erf"] == 0
    assert counts["SkipLayerNormalization"] == layers
    ort_config = json.loads((out / "ort_config.json").read_text())
    assert ort_config["optimization"]["optimization_level"] == 2
    assert ort_config["quantization"]["is_static"] is False
    from hfkdq.quantization import load_variant

    inputs = encode(minilm_tokenizer)
    reference = logits_of(fp32(students["token"], "token"), inputs)
    assert agreement(reference, logits_of(load_variant(out), inputs), inputs["attention_mask"]) >= AGREEMENT


def test_fp32_export_matches_pytorch(students, minilm_tokenizer, tmp_path):
    from hfkdq.quantization import load_variant

    out = quantize(students["sequence"], "onnx-fp32", tmp_path / "fp32")
    inputs = encode(minilm_tokenizer)
    reference = logits_of(fp32(students["sequence"], "sequence"), inputs)
    assert abs(logits_of(load_variant(out), inputs) - reference).max() < 1e-4


def test_architecture_optimum_cannot_export_is_a_clear_error(tmp_path):
    from transformers import FNetConfig, FNetForSequenceClassification

    config = FNetConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, intermediate_size=32)
    FNetForSequenceClassification(config).save_pretrained(tmp_path / "fnet")
    with pytest.raises(UnsupportedArchitectureError, match="cannot export model type 'fnet'") as error:
        quantize(tmp_path / "fnet", "onnx-int8", tmp_path / "out")
    assert "torch-int8" in str(error.value)
    assert not (tmp_path / "out").exists()
