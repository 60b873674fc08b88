"""bitsandbytes variants: 8-bit and 4-bit (nf4, fp4, double quant) with an fp32 head, whose saved
directory reloads to exactly the logits of the freshly quantized model. On CPU bitsandbytes saves
memory only; the same code places the model on CUDA when a GPU is visible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from quantization_helpers import agreement, encode, linear_weight_bytes, logits_of, save_tiny_model

from hfkdq.evaluation import parameter_memory_bytes
from hfkdq.quantization import load_variant, quantize
from hfkdq.quantization.artifacts import inspect_model_dir, read_metadata
from hfkdq.quantization.bnb import (
    build_bnb_config,
    cpu_4bit_incompatible_linears,
    default_compute_dtype,
    default_device,
    device_map_for,
)

pytest.importorskip("bitsandbytes")

VARIANTS = [
    pytest.param("bnb-8bit", {}, id="8bit"),
    pytest.param("bnb-4bit", {}, id="nf4"),
    pytest.param("bnb-4bit", {"double_quant": True}, id="nf4-double-quant"),
    pytest.param("bnb-4bit-fp4", {}, id="fp4"),
]


@pytest.fixture(scope="module")
def students(tmp_path_factory, minilm_tokenizer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bnb-students")
    return {head: save_tiny_model(root / head, minilm_tokenizer, head=head) for head in ("sequence", "token")}


def freshly_quantized(student: Path, method: str, options: dict):
    """The in-memory model bitsandbytes produces, before any save, to compare the reload with."""
    model = inspect_model_dir(student)
    bits = 8 if method == "bnb-8bit" else 4
    quant_type = "fp4" if method.endswith("fp4") else "nf4"
    config = build_bnb_config(
        bits,
        quant_type=quant_type,
        double_quant=options.get("double_quant", False),
        compute_dtype=default_compute_dtype(),
    )
    return model.auto_class().from_pretrained(
        student, quantization_config=config, device_map=device_map_for(None), dtype=torch.float32
    )


@pytest.mark.parametrize("head", ["sequence", "token"])
@pytest.mark.parametrize(("method", "options"), VARIANTS)
def test_save_and_reload_reproduces_the_logits(students, minilm_tokenizer, tmp_path, head, method, options):
    out = quantize(students[head], method, tmp_path / method, **options)
    inputs = encode(minilm_tokenizer)
    fresh = logits_of(freshly_quantized(students[head], method, options), inputs)
    reloaded = logits_of(load_variant(out), inputs)
    np.testing.assert_allclose(reloaded, fresh, rtol=0, atol=1e-6)
    reference = logits_of(load_variant(students[head]), inputs)
    assert agreement(reference, reloaded, inputs["attention_mask"]) >= 0.9


@pytest.mark.parametrize(("method", "options"), VARIANTS)
def test_encoder_is_quantized_and_the_head_stays_fp32(students, tmp_path, method, options):
    import bitsandbytes as bnb

    out = quantize(students["sequence"], method, tmp_path / method, **options)
    model = load_variant(out)
    query = model.bert.encoder.layer[0].attention.self.query
    assert isinstance(query, bnb.nn.Linear8bitLt if method == "bnb-8bit" else bnb.nn.Linear4bit)
    assert type(model.classifier) is torch.nn.Linear
    assert model.classifier.weight.dtype == torch.float32
    assert read_metadata(out)["options"]["skip_modules"] == ["classifier"]


@pytest.mark.parametrize(("method", "saved_fraction"), [("bnb-8bit", 0.7), ("bnb-4bit", 0.8)])
def test_weight_memory_shrinks_by_the_quantized_linear_layers(students, tmp_path, method, saved_fraction):
    """Embeddings (30522 x 64) stay fp32 and dominate a tiny model, so the check is on what was quantized:
    8-bit saves ~75% of the Linear weights' bytes, 4-bit ~87%."""
    fp32 = load_variant(students["sequence"])
    quantized = load_variant(quantize(students["sequence"], method, tmp_path / method))
    saved = parameter_memory_bytes(fp32) - parameter_memory_bytes(quantized)
    assert saved >= saved_fraction * linear_weight_bytes(fp32)
    disk_saved = (students["sequence"] / "model.safetensors").stat().st_size - (
        tmp_path / method / "model.safetensors"
    ).stat().st_size
    assert disk_saved >= saved_fraction * linear_weight_bytes(fp32)


def test_cpu_4bit_kernel_shapes_are_kept_fp32_instead_of_crashing(minilm_tokenizer, tmp_path):
    """Width 32 < the kernel's 64-wide blocks: those layers would fail in forward, so they stay fp32."""
    student = save_tiny_model(tmp_path / "narrow", minilm_tokenizer, hidden_size=32)
    assert cpu_4bit_incompatible_linears(inspect_model_dir(student))
    out = quantize(student, "bnb-4bit", tmp_path / "nf4", device="cpu")
    kept = read_metadata(out)["kept_fp32_for_cpu_kernel"]
    assert "bert.encoder.layer.0.attention.self.query" in kept
    inputs = encode(minilm_tokenizer)
    reference = logits_of(load_variant(student), inputs)
    assert logits_of(load_variant(out, device="cpu"), inputs).shape == reference.shape


def test_device_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == "cpu"
    assert device_map_for(None) == {"": "cpu"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == "cuda"
    assert device_map_for(None) == {"": 0}


def test_bits_other_than_4_or_8_are_refused():
    with pytest.raises(ValueError, match="8 or 4 bits"):
        build_bnb_config(2)
    with pytest.raises(ValueError, match="'nf4' or 'fp4'"):
        build_bnb_config(4, quant_type="int4")
