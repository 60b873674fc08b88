"""What importing a module pulls in: no cycles between layers, and no optional backend on the core path.

Each check runs in a fresh interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
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


@pytest.mark.parametrize("module", ["hfkdq.glue_tasks", "hfkdq.heads", "hfkdq.devices", "hfkdq.outputs"])
def test_small_shared_modules_import_no_framework(module):
    """Registries and helpers every layer uses stay cheap to import (torch, transformers load on use)."""
    loaded = modules_loaded_by(f"import {module}")
    assert not loaded & {"torch", "transformers", "datasets"}
