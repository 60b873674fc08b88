"""What importing a module pulls in: no cycles between layers, and no optional backend on the core path.

Each check runs in a fresh interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO_ROOT


def modules_loaded_by(code: str) -> set[str]:
    """The names in `sys.modules` after running `code` in a fresh interpreter (repo root first on the path)."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_evaluation_does_not_import_quantization():
    """`hfkdq.quantization.workflow` imports `hfkdq.evaluation`; the other way round would be a cycle."""
    loaded = modules_loaded_by("import hfkdq.evaluation")
    assert "hfkdq.evaluation" in loaded
    assert not {name for name in loaded if name.startswith("hfkdq.quantization")}


def test_small_shared_modules_import_no_framework():
    """Registries and helpers every layer uses stay cheap to import (torch, transformers load on use)."""
    loaded = modules_loaded_by("import hfkdq.glue_tasks, hfkdq.heads, hfkdq.devices, hfkdq.outputs")
    assert not loaded & {"torch", "transformers", "datasets"}


ONNX_PACKAGES = ("optimum", "onnxruntime", "onnx")


def onnx_modules(loaded: set[str]) -> set[str]:
    return {name for name in loaded if name.split(".")[0] in ONNX_PACKAGES}


CORE_MODULES = (
    "hfkdq",
    "hfkdq.pipeline",
    "hfkdq.cli",
    "hfkdq.evaluation",
    "hfkdq.quantization",
    "hfkdq.quantization.workflow",
    "hfkdq.quantization.onnx",  # the backend module itself imports optimum only when it is used
    "hfkdq.tasks.evaluation_data",
)


def test_the_core_import_path_never_imports_the_onnx_extra():
    """The ONNX extra only supports transformers <4.58: the core must import without it (and not pay for it)."""
    loaded = modules_loaded_by(f"import {', '.join(CORE_MODULES)}\nhfkdq.cli.build_parser()")
    assert set(CORE_MODULES) <= loaded
    assert not onnx_modules(loaded)


def test_quantizing_and_evaluating_without_onnx_methods_never_imports_the_extra(tmp_path):
    """The whole torch-int8 run (quantize, load, evaluate, time, report) runs where the extra is missing."""
    code = f"""
from pathlib import Path

from datasets import Dataset
from transformers import AutoTokenizer, BertForSequenceClassification, DataCollatorWithPadding

from hfkdq.quantization import quantize_and_evaluate
from hfkdq.resources import packaged_minilm_path
from tests.conftest import tiny_bert_config

root = Path({str(tmp_path)!r})
BertForSequenceClassification(tiny_bert_config(num_labels=2, num_layers=1)).save_pretrained(root / "student")
tokenizer = AutoTokenizer.from_pretrained(str(packaged_minilm_path()))
dataset = Dataset.from_dict({{**tokenizer(["a short one", "and a longer sentence"]), "labels": [0, 1]}})


def accuracy(prediction):
    return {{"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}}


quantize_and_evaluate(
    root / "student", "torch-int8", root / "quantized", dataset, DataCollatorWithPadding(tokenizer), accuracy,
    latency_batch_sizes=(1,), latency_seq_len=8, latency_repeats=1, latency_warmup=0,
)
"""
    loaded = modules_loaded_by(code)
    assert (tmp_path / "quantized" / "REPORT.md").is_file()
    assert "hfkdq.quantization.torch_dynamic" in loaded
    assert not onnx_modules(loaded)
