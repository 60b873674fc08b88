"""ONNX Runtime is the optional extra `hfkdq[onnx]`: asking for an onnx-* method without it fails at once.

"At once" means where the methods are parsed, before any data is loaded, model trained or other
method run, with a message naming the extra and the transformers range it supports. The extra is
simulated missing (a `None` entry in `sys.modules` makes `import` raise ImportError), so these tests
run the same with and without it installed.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

import pytest

from hfkdq.commands.errors import EXIT_ERROR
from hfkdq.commands.main import build_parser, main
from hfkdq.quantization import MissingBackendError, parse_methods

EXTRA_MESSAGE = re.escape(
    "needs the ONNX Runtime extra: pip install 'hfkdq[onnx]' (optimum-onnx 0.1 supports transformers "
    f">=4.57,<4.58; you have transformers {metadata.version('transformers')})."
)


@pytest.fixture
def without_onnx(monkeypatch):
    """optimum.onnxruntime cannot be imported, as with transformers 5 where optimum-onnx is not installed."""
    monkeypatch.setitem(sys.modules, "optimum.onnxruntime", None)


def never(*args, **kwargs):
    raise AssertionError("reached work that a missing extra must have prevented")


@pytest.mark.usefixtures("without_onnx")
@pytest.mark.parametrize("methods", ["onnx-fp32", "torch-int8,onnx-int8", ["bnb-8bit", "onnx-int8-static"]])
def test_parsing_an_onnx_method_fails_naming_the_extra(methods):
    with pytest.raises(MissingBackendError, match=r"Quantization method 'onnx-[\w-]+' " + EXTRA_MESSAGE):
        parse_methods(methods)


@pytest.mark.usefixtures("without_onnx")
def test_methods_without_onnx_parse_as_before():
    assert parse_methods("torch-int8,bnb-8bit") == ["torch-int8", "bnb-8bit"]


@pytest.mark.usefixtures("without_onnx")
def test_an_unknown_name_is_reported_before_a_missing_extra():
    with pytest.raises(ValueError, match="Unknown quantization method 'int3'"):
        parse_methods("onnx-int8,int3")


def test_quantize_cli_fails_before_loading_any_data(without_onnx, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("hfkdq.tasks.evaluation_data.load_evaluation_data", never)
    monkeypatch.setattr("hfkdq.quantization.workflow.quantize_and_evaluate", never)
    status = main(
        ["quantize", str(tmp_path / "student"), "--output_dir", str(tmp_path / "q")]
    )  # default methods
    assert status == EXIT_ERROR
    assert re.search("Quantization method 'onnx-int8' " + EXTRA_MESSAGE, capsys.readouterr().err)
    assert not (tmp_path / "q").exists()


def test_recipe_quantize_flag_fails_at_argument_parsing(without_onnx, tmp_path):
    """Before the tokenizer or the task's data is loaded, let alone a teacher fine-tuned."""
    from hfkdq.commands.distill import run_recipe
    from hfkdq.tasks.ner import NerDataArguments

    argv = ["--output_dir", str(tmp_path / "run"), "--quantize", "torch-int8,onnx-int8"]
    with pytest.raises(MissingBackendError, match=EXTRA_MESSAGE):
        run_recipe(NerDataArguments, never, argv)
    assert not (tmp_path / "run").exists()


def test_distill_cli_reports_the_missing_extra(without_onnx, tmp_path, capsys):
    argv = ["distill", "ner", "--output_dir", str(tmp_path / "run"), "--quantize", "onnx-int8"]
    assert main(argv) == EXIT_ERROR
    assert re.search(EXTRA_MESSAGE, capsys.readouterr().err)


def test_cli_passes_each_method_only_the_options_it_takes():
    """--cpu_target and --per_channel tune the int8 methods; onnx-fp32 (no int8 config) never gets them."""
    from hfkdq.commands.quantize import _method_options

    args = build_parser().parse_args(
        ["quantize", "model", "--output_dir", "out", "--cpu_target", "avx2", "--no-per_channel"]
    )
    assert _method_options(args, "onnx-fp32") == {"optimize": False}
    assert _method_options(args, "onnx-int8") == {
        "optimize": False,
        "cpu_target": "avx2",
        "per_channel": False,
    }
    assert _method_options(args, "onnx-int8-static")["calibration_samples"] == 100
    assert _method_options(args, "torch-int8") == _method_options(args, "bnb-4bit") == {}
