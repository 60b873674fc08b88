"""The registry's contract: method names, errors a user can act on, and outputs that are never half-written."""

from __future__ import annotations

import inspect
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from quantization_helpers import save_tiny_model

from hfkdq.quantization import (
    BACKENDS,
    METHODS,
    MissingBackendError,
    NotASavedModelError,
    available_methods,
    get_method,
    load_variant,
    quantize,
)
from hfkdq.quantization.artifacts import read_metadata
from hfkdq.quantization.onnx import detect_cpu_target


@pytest.fixture(scope="module")
def student(tmp_path_factory, minilm_tokenizer) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("student") / "model", minilm_tokenizer)


def test_registry_names_every_backend_variant():
    assert available_methods() == [
        "onnx-fp32",
        "onnx-int8",
        "onnx-int8-static",
        "bnb-8bit",
        "bnb-4bit",
        "bnb-4bit-fp4",
        "torch-int8",
    ]
    assert METHODS["bnb-4bit"].defaults == {"bits": 4, "quant_type": "nf4"}


def test_unknown_method_lists_the_valid_ones(student, tmp_path):
    with pytest.raises(ValueError, match="Unknown quantization method 'int3'") as error:
        quantize(student, "int3", tmp_path / "out")
    for name in available_methods():
        assert name in str(error.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("method", "module"), [("bnb-8bit", "bitsandbytes"), ("bnb-4bit", "bitsandbytes")])
def test_missing_backend_names_the_pip_package(student, tmp_path, monkeypatch, method, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(ImportError, match=re.escape("pip install 'bitsandbytes'")) as error:
        quantize(student, method, tmp_path / "out")
    assert isinstance(error.value, MissingBackendError)
    assert method in str(error.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("method", "module"),
    [("onnx-fp32", "onnxruntime"), ("onnx-int8", "onnx"), ("onnx-int8-static", "optimum.onnxruntime")],
)
def test_missing_onnx_package_names_the_extra_and_its_transformers_range(
    student, tmp_path, monkeypatch, method, module
):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingBackendError) as error:
        quantize(student, method, tmp_path / "out")
    message = str(error.value)
    assert message.startswith(
        f"Quantization method {method!r} needs the ONNX Runtime extra: pip install 'hfkdq[onnx]' "
        "(optimum-onnx 0.1 supports transformers >=4.57,<4.58; "
        f"you have transformers {metadata.version('transformers')})."
    )
    assert "cannot be imported" in message  # and why (the first of its packages that is missing)
    assert not (tmp_path / "out").exists()


def test_every_method_names_options_its_backend_function_takes():
    """The registry's `defaults` and `options` are keyword parameters of the function that makes the variant."""
    for method in METHODS.values():
        function = getattr(method.backend.load_module(), method.function)
        keywords = {
            name
            for name, parameter in inspect.signature(function).parameters.items()
            if parameter.kind is parameter.KEYWORD_ONLY
        }
        assert {*method.defaults, *method.options, "overwrite"} <= keywords, method.name


def test_every_backend_loads_its_variants_through_one_signature():
    assert {method.backend.name for method in METHODS.values()} == set(BACKENDS)
    for backend in BACKENDS.values():
        loader = getattr(backend.load_module(), backend.loader)
        assert list(inspect.signature(loader).parameters)[:3] == ["directory", "head", "device"]
        if backend.check:
            assert callable(getattr(backend.load_module(), backend.check))


def test_only_static_quantization_needs_calibration_data():
    assert [name for name, method in METHODS.items() if method.needs_calibration_data] == ["onnx-int8-static"]


def test_an_option_the_method_does_not_take_fails_before_any_work(student, tmp_path):
    with pytest.raises(
        ValueError, match="'torch-int8' takes no option 'per_channel'; its options: skip_modules"
    ):
        quantize(student, "torch-int8", tmp_path / "out", per_channel=False)
    assert not (tmp_path / "out").exists()


def test_torch_int8_needs_no_optional_backend():
    assert get_method("torch-int8").requires == ()


def test_missing_directory_is_not_a_saved_model(tmp_path):
    with pytest.raises(NotASavedModelError, match="is not a directory"):
        quantize(tmp_path / "nowhere", "torch-int8", tmp_path / "out")


def test_directory_without_config_is_not_a_saved_model(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("not a model")
    with pytest.raises(NotASavedModelError, match="no config.json"):
        quantize(tmp_path / "model", "torch-int8", tmp_path / "out")


def test_config_without_weights_is_not_a_saved_model(tmp_path):
    from conftest import tiny_bert_config

    tiny_bert_config().save_pretrained(tmp_path / "model")
    with pytest.raises(NotASavedModelError, match="no weights"):
        quantize(tmp_path / "model", "torch-int8", tmp_path / "out")


def test_encoder_without_classification_head_is_rejected(tmp_path):
    from conftest import tiny_bert_config
    from transformers import BertModel

    BertModel(tiny_bert_config(num_layers=1)).save_pretrained(tmp_path / "encoder")
    with pytest.raises(NotASavedModelError, match="ForSequenceClassification / …ForTokenClassification"):
        quantize(tmp_path / "encoder", "torch-int8", tmp_path / "out")


def test_a_quantized_variant_is_not_quantized_again(student, tmp_path):
    variant = quantize(student, "torch-int8", tmp_path / "int8")
    with pytest.raises(NotASavedModelError, match="already a quantized variant"):
        quantize(variant, "torch-int8", tmp_path / "again")


def test_existing_output_needs_overwrite(student, tmp_path):
    out = quantize(student, "torch-int8", tmp_path / "int8")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        quantize(student, "torch-int8", out)
    (out / "stale.txt").write_text("from the previous run")
    quantize(student, "torch-int8", out, overwrite=True)
    assert not (out / "stale.txt").exists()
    assert read_metadata(out)["method"] == "torch-int8"


def test_plain_model_directory_loads_as_fp32(student):
    model = load_variant(student)
    assert type(model).__name__ == "BertForSequenceClassification"
    assert next(model.parameters()).dtype.is_floating_point


VNNI = "processor : 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"
AVX512 = "flags : fpu sse2 avx2 avx512f avx512bw\n"
AVX2 = "flags : fpu sse2 avx avx2 fma\n"
ALDER_LAKE = "flags : fpu sse2 avx2 avx_vnni\n"


@pytest.mark.parametrize(
    ("cpuinfo", "machine", "target"),
    [
        (VNNI, "x86_64", "avx512_vnni"),
        (ALDER_LAKE, "x86_64", "avx512_vnni"),
        (AVX512, "x86_64", "avx512"),
        (AVX2, "x86_64", "avx2"),
        ("", "x86_64", "avx2"),
        ("Features : fp asimd", "aarch64", "arm64"),
        ("", "arm64", "arm64"),
    ],
)
def test_int8_config_follows_the_cpu_flags(cpuinfo, machine, target):
    """u8/s8 (VNNI) configs on an AVX2-only CPU can saturate; the avx2 config on a VNNI CPU is ~3x slower."""
    assert detect_cpu_target(cpuinfo, machine) == target
