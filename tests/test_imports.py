"""What importing a module pulls in: no import cycle anywhere in the package, and no optional backend on
the core path.

The cycle check reads the source (every `import`, at module level, inside functions and under
TYPE_CHECKING alike: a function-level import is still a dependency, only a later one). The other checks
run in a fresh interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package in `package_dir` (a package is its __init__)."""
    modules = {}
    for file in package_dir.rglob("*.py"):
        parts = list(file.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = file
    return modules


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its source (relative imports resolved)."""
    modules = module_files(package_dir)
    root = package_dir.name

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, file in modules.items():
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parents = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*parents, base] if base else parents)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                if target.split(".")[0] == root and (found := known(target)) and found != name:
                    graph[name].add(found)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan): each is an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_package_has_no_import_cycle():
    graph = import_graph(REPO_ROOT / "hfkdq")
    assert len(graph) > 40 and sum(map(len, graph.values())) > 100  # the whole package was read
    assert import_cycles(graph) == []


def write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, source in files.items():
        path = root / "pkg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "pkg"


@pytest.mark.parametrize(
    "back_edge",
    [
        "from pkg.a import thing\n",  # module level
        "def later():\n    from pkg.a import thing\n",  # inside a function
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n",  # type checking only
        "from ..a import thing\n",  # relative
    ],
)
def test_a_cycle_put_back_is_found(tmp_path, back_edge):
    """pkg.a -> pkg.sub.b is a layer; b importing a back, however it is written, closes a cycle."""
    files = {"__init__.py": "", "a.py": "from pkg.sub.b import helper\nthing = 1\n", "sub/__init__.py": ""}
    acyclic = write_package(tmp_path / "clean", {**files, "sub/b.py": "def helper():\n    return 1\n"})
    assert import_cycles(import_graph(acyclic)) == []
    cyclic = write_package(
        tmp_path / "cyclic", {**files, "sub/b.py": back_edge + "def helper():\n    return 1\n"}
    )
    assert import_cycles(import_graph(cyclic)) == [["pkg.a", "pkg.sub.b"]]


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
