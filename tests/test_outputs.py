"""Outputs appear whole or not at all: a failing write leaves the previous output and no staging behind."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO_ROOT

import hfkdq.outputs as outputs
from hfkdq.outputs import atomic_output_dir, save_model_atomically, write_json_atomically


def test_a_complete_output_is_swapped_in_over_the_previous_one(tmp_path):
    target = tmp_path / "variant"
    target.mkdir()
    (target / "stale.txt").write_text("previous")
    with atomic_output_dir(target, overwrite=True) as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".variant.partial-")
        (staging / "model.onnx").write_text("new")
    assert [path.name for path in tmp_path.iterdir()] == ["variant"]
    assert [path.name for path in target.iterdir()] == ["model.onnx"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~_umask()  # as mkdir makes it, not 0700


def test_failed_write_leaves_neither_output_nor_temporary_directory(tmp_path):
    target = tmp_path / "variant"
    with pytest.raises(RuntimeError, match="disk full"), atomic_output_dir(target) as staging:
        (staging / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_previous_output(tmp_path):
    target = tmp_path / "variant"
    target.mkdir()
    (target / "model.onnx").write_text("previous")
    with pytest.raises(RuntimeError), atomic_output_dir(target, overwrite=True) as staging:
        (staging / "model.onnx").write_text("half")
        raise RuntimeError("interrupted")
    assert (target / "model.onnx").read_text() == "previous"
    assert [path.name for path in tmp_path.iterdir()] == ["variant"]


def test_an_existing_output_is_kept_without_overwrite(tmp_path):
    (tmp_path / "variant").mkdir()
    with pytest.raises(FileExistsError, match="overwrite=True"), atomic_output_dir(tmp_path / "variant"):
        pytest.fail("no staging directory may be made")
    assert [path.name for path in tmp_path.iterdir()] == ["variant"]


def test_staging_names_are_unique_per_run(tmp_path):
    """A crashed run's leftover (or a concurrent run) never shares a staging directory with this one."""
    with (
        atomic_output_dir(tmp_path / "a") as first,
        atomic_output_dir(tmp_path / "a", overwrite=True) as second,
    ):
        assert first != second
        (first / "from").write_text("first")
        (second / "from").write_text("second")
    assert (tmp_path / "a" / "from").read_text() == "first"  # the run that finished last
    assert [path.name for path in tmp_path.iterdir()] == ["a"]


def test_json_is_replaced_atomically(tmp_path, monkeypatch):
    path = write_json_atomically(tmp_path / "results.json", {"f1": 0.5, "path": Path("x")})
    assert json.loads(path.read_text()) == {"f1": 0.5, "path": "x"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()

    def interrupted(source, target):
        raise OSError("interrupted")

    monkeypatch.setattr(outputs.os, "replace", interrupted)
    with pytest.raises(OSError, match="interrupted"):
        write_json_atomically(path, {"f1": 0.9})
    assert json.loads(path.read_text())["f1"] == 0.5
    assert [item.name for item in tmp_path.iterdir()] == ["results.json"]


class FakeTrainer:
    """The part of `transformers.Trainer` that `save_model_atomically` uses, in one process."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.saved_to: list[str] = []
        self.accelerator = SimpleNamespace(num_processes=1, wait_for_everyone=lambda: None)

    def is_world_process_zero(self) -> bool:
        return True

    def save_model(self, output_dir: str) -> None:
        self.saved_to.append(output_dir)
        (Path(output_dir) / "model.safetensors").write_text("half" if self.fail else "new")
        if self.fail:
            raise RuntimeError("disk full")


def test_a_saved_model_is_swapped_in_from_a_unique_staging_directory(tmp_path):
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "model.safetensors").write_text("previous")
    trainers = [FakeTrainer(), FakeTrainer()]
    for trainer in trainers:
        save_model_atomically(trainer, tmp_path / "student")
    assert (tmp_path / "student" / "model.safetensors").read_text() == "new"
    assert [path.name for path in tmp_path.iterdir()] == ["student"]
    first, second = (Path(trainer.saved_to[0]) for trainer in trainers)
    assert first != second and first.name.startswith(".student.partial-")


def test_a_failed_save_keeps_the_previous_model_and_leaves_no_staging(tmp_path):
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "model.safetensors").write_text("previous")
    with pytest.raises(RuntimeError, match="disk full"):
        save_model_atomically(FakeTrainer(fail=True), tmp_path / "student")
    assert (tmp_path / "student" / "model.safetensors").read_text() == "previous"
    assert [path.name for path in tmp_path.iterdir()] == ["student"]


@pytest.mark.slow
def test_every_rank_saves_into_the_staging_directory_rank_zero_made(tmp_path):
    """`Trainer.save_model` runs on every rank (only the saving one writes), so all must get one path."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_port", str(port), str(REPO_ROOT / "tests" / "scripts" / "save_atomically.py")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [*command, str(tmp_path)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"torchrun failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [record["world_size"] for record in ranks] == [2, 2]
    assert ranks[0]["staging"] == ranks[1]["staging"]
    assert Path(ranks[0]["staging"][0]).name.startswith(".student.partial-")
    assert (tmp_path / "student" / "model.safetensors").is_file()
    assert not list(tmp_path.glob(".student.*"))


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask
