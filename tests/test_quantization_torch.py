"""PyTorch dynamic int8: int8 Linear layers with an fp32 head, saved as config + tokenizer + state dict
(format documented in the output's README.md) and rebuilt by `load_torch_int8`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from quantization_helpers import agreement, encode, linear_weight_bytes, logits_of, save_tiny_model

from hfkdq.quantization import load_variant, quantize
from hfkdq.quantization.artifacts import inspect_model_dir, read_metadata
from hfkdq.quantization.torch_dynamic import STATE_DICT_FILE, _quantize, linears_to_quantize, load_torch_int8


@pytest.fixture(scope="module")
def students(tmp_path_factory, minilm_tokenizer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("torch-students")
    return {head: save_tiny_model(root / head, minilm_tokenizer, head=head) for head in ("sequence", "token")}


@pytest.fixture(scope="module")
def variants(students, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("torch-int8")
    return {head: quantize(path, "torch-int8", root / head) for head, path in students.items()}


@pytest.mark.parametrize("head", ["sequence", "token"])
def test_reload_reproduces_the_quantized_logits(students, variants, minilm_tokenizer, head):
    fp32 = load_variant(students[head])
    in_memory = _quantize(fp32, linears_to_quantize(fp32))
    inputs = encode(minilm_tokenizer)
    reloaded = load_torch_int8(variants[head])
    np.testing.assert_array_equal(logits_of(reloaded, inputs), logits_of(in_memory, inputs))
    assert agreement(logits_of(fp32, inputs), logits_of(reloaded, inputs), inputs["attention_mask"]) >= 0.9


def test_linear_layers_are_int8_and_the_head_is_fp32(variants):
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    model = load_torch_int8(variants["sequence"])
    assert isinstance(model.bert.encoder.layer[0].attention.self.query, DynamicLinear)
    assert isinstance(model.bert.encoder.layer[1].output.dense, DynamicLinear)
    assert type(model.classifier) is torch.nn.Linear
    assert model.classifier.weight.dtype == torch.float32
    assert "classifier" not in read_metadata(variants["sequence"])["quantized_modules"]


def test_saved_format_is_documented_and_safe_to_load(variants):
    out = variants["token"]
    metadata = read_metadata(out)
    assert metadata["backend"] == "torch" and metadata["state_dict"] == STATE_DICT_FILE
    assert "load_torch_int8" in (out / "README.md").read_text()
    state_dict = torch.load(out / STATE_DICT_FILE, weights_only=True)  # no pickled code needed
    assert any(key.endswith("_packed_params._packed_params") for key in state_dict)
    assert {"config.json", "tokenizer.json"} <= {path.name for path in out.iterdir()}
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(out)("a test")["input_ids"], "the variant's tokenizer loads and runs"


def test_transformers_cannot_mistake_it_for_an_fp32_model(variants):
    from transformers import AutoModelForSequenceClassification

    with pytest.raises(OSError):
        AutoModelForSequenceClassification.from_pretrained(variants["sequence"])


def test_state_dict_shrinks_by_the_quantized_linear_layers(students, variants):
    """Embeddings stay fp32 and dominate this tiny model; int8 saves ~75% of the Linear weights' bytes."""
    fp32 = load_variant(students["sequence"])
    saved = (students["sequence"] / "model.safetensors").stat().st_size - (
        variants["sequence"] / STATE_DICT_FILE
    ).stat().st_size
    assert saved >= 0.65 * linear_weight_bytes(fp32)


def test_skip_modules_keeps_more_layers_fp32(students, tmp_path):
    out = quantize(
        students["sequence"], "torch-int8", tmp_path / "int8", skip_modules=["classifier", "bert.pooler"]
    )
    quantized = read_metadata(out)["quantized_modules"]
    assert not any(name.startswith("bert.pooler") for name in quantized)
    model = load_torch_int8(out)
    assert type(model.bert.pooler.dense) is torch.nn.Linear
    assert (
        len(quantized)
        == len(linears_to_quantize(load_variant(inspect_model_dir(students["sequence"]).path))) - 1
    )


def test_loading_a_non_torch_variant_is_refused(students):
    with pytest.raises(ValueError, match="not a torch-int8 variant"):
        load_torch_int8(students["sequence"])
