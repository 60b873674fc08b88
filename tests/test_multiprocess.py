"""Two CPU processes through `accelerate launch` (gloo): the documented multi-process path."""

import os
import socket
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT

from hfkdq.distillation_model import PROJECTION_PREFIX

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accelerate_launch(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`accelerate launch --multi_gpu --num_processes 2 ...` on CPU: two real processes over gloo.

    (`--cpu --num_processes 2` silently runs one process.)
    """
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        *args,
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"accelerate launch failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return result


def test_two_processes_end_with_identical_student_and_projection_weights(tmp_path):
    accelerate_launch(str(REPO_ROOT / "tests" / "scripts" / "ddp_distill.py"), str(tmp_path))
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert any(key.startswith(PROJECTION_PREFIX) for key in rank0["state"]), (
        "widths differ: projections expected"
    )
    assert rank0["state"].keys() == rank1["state"].keys()
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), f"{key} differs between ranks"
    logged = [entry for entry in rank0["log_history"] if "loss_kd" in entry]
    assert logged, "loss terms are logged in multi-process runs too"


def test_the_ner_recipe_completes_under_accelerate_with_two_processes(tmp_path, tiny_teacher_dir):
    output_dir = tmp_path / "run"
    accelerate_launch(
        str(REPO_ROOT / "recipes" / "distill_bert_ner.py"),
        str(REPO_ROOT / "tests" / "data" / "ner_recipe_tiny.yaml"),
        "--teacher_name_or_path",
        str(tiny_teacher_dir),
        "--output_dir",
        str(output_dir),
    )
    assert (output_dir / "results.json").is_file()
    assert (output_dir / "student" / "model.safetensors").is_file()
    assert not list(output_dir.glob(".*.partial-*")) and not list(output_dir.glob(".*.old-*"))
