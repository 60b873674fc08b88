"""Kill and resume, with real processes: a run SIGKILLed mid-epoch (while distilling, or while its
teacher is still being fine-tuned) and resumed with ``--resume_from_checkpoint true`` ends with the
same student and projection weights, bit for bit, as a run that was never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT, TEST_DATA
from safetensors.torch import load_file

RECIPE = str(REPO_ROOT / "recipes" / "distill_bert_ner.py")
# 48 training sentences / batch 4 = 12 steps per epoch, 3 epochs; a checkpoint every 5 steps, so
# every checkpoint but the epoch ends falls mid-epoch. Teacher: 3 epochs, a checkpoint each.
SETTINGS = [
    str(TEST_DATA / "ner_recipe_tiny.yaml"),
    "--per_device_train_batch_size",
    "4",
    "--num_train_epochs",
    "3",
    "--teacher_num_train_epochs",
    "3",
    "--teacher_early_stopping_patience",
    "5",
    "--save_strategy",
    "steps",
    "--save_steps",
    "5",
    "--dataloader_num_workers",
    "0",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "TOKENIZERS_PARALLELISM": "false"}


def _command(teacher: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        RECIPE,
        *SETTINGS,
        "--teacher_name_or_path",
        str(teacher),
        "--output_dir",
        str(output_dir),
        *extra,
    ]


def _run(command: list[str]) -> str:
    finished = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stdout + finished.stderr


def _kill_when(command: list[str], ready) -> None:
    """Start the run, SIGKILL it as soon as `ready()` holds; fail if it finished first."""
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        if ready():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return
        time.sleep(0.02)
    pytest.fail(
        f"the run ended (status {process.returncode}) before it could be killed: {process.stderr.read()[-2000:]}"
    )


def _steps(directory: Path) -> list[int]:
    return (
        sorted(int(p.name.split("-")[1]) for p in directory.glob("checkpoint-*"))
        if directory.is_dir()
        else []
    )


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _assert_identical(first: Path, second: Path) -> None:
    a, b = _tensors(first), _tensors(second)
    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def uninterrupted(tiny_teacher_dir, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("kill") / "uninterrupted"
    _run(_command(tiny_teacher_dir, output_dir))
    return output_dir


def test_a_run_killed_mid_epoch_resumes_to_bit_identical_weights(uninterrupted, tiny_teacher_dir, tmp_path):
    output_dir = tmp_path / "killed"
    command = _command(tiny_teacher_dir, output_dir)
    # Killed as the first checkpoint of the second epoch appears: possibly half-written.
    _kill_when(command, lambda: any(12 < step < 24 for step in _steps(output_dir)))
    assert not (output_dir / "student").exists()

    _run([*command, "--resume_from_checkpoint", "true"])

    _assert_identical(
        uninterrupted / "student" / "model.safetensors", output_dir / "student" / "model.safetensors"
    )
    last = max(_steps(uninterrupted))
    # The last checkpoint holds the student *and* its distillation projections.
    _assert_identical(
        uninterrupted / f"checkpoint-{last}" / "model.safetensors",
        output_dir / f"checkpoint-{last}" / "model.safetensors",
    )


def test_a_run_killed_while_fine_tuning_its_teacher_resumes_the_teacher(
    uninterrupted, tiny_teacher_dir, tmp_path
):
    output_dir = tmp_path / "killed-teacher"
    command = _command(tiny_teacher_dir, output_dir)
    teacher_checkpoints = output_dir / "teacher-training"
    _kill_when(
        command,
        lambda: (
            bool(_steps(teacher_checkpoints))
            and (
                teacher_checkpoints / f"checkpoint-{_steps(teacher_checkpoints)[0]}" / "trainer_state.json"
            ).is_file()
        ),
    )
    assert not (output_dir / "teacher").exists(), "killed before the teacher was saved"

    printed = _run([*command, "--resume_from_checkpoint", "true", "--log_level", "info"])

    assert "Resuming the teacher's fine-tuning from" in printed, "the teacher continues, not restarts"
    _assert_identical(
        uninterrupted / "teacher" / "model.safetensors", output_dir / "teacher" / "model.safetensors"
    )
    _assert_identical(
        uninterrupted / "student" / "model.safetensors", output_dir / "student" / "model.safetensors"
    )


def _complete_checkpoint(directory: Path) -> Path:
    from conftest import tiny_bert_config
    from transformers import BertForTokenClassification

    directory.mkdir(parents=True)
    BertForTokenClassification(tiny_bert_config(num_labels=3, num_layers=1, hidden_size=32)).save_pretrained(
        directory
    )
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({}, directory / name)
    (directory / "trainer_state.json").write_text("{}")
    return directory


def test_resume_true_skips_half_written_checkpoints_and_an_explicit_one_is_refused_with_the_fix(
    tmp_path, caplog
):
    from hfkdq.checkpoints import resolve_resume_checkpoint

    good = _complete_checkpoint(tmp_path / "checkpoint-4")
    truncated = _complete_checkpoint(tmp_path / "checkpoint-8")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    no_optimizer = _complete_checkpoint(tmp_path / "checkpoint-12")
    (no_optimizer / "optimizer.pt").unlink()

    assert resolve_resume_checkpoint("true", tmp_path) == str(good)
    assert "checkpoint-12, half-written" in caplog.text and "missing optimizer.pt" in caplog.text
    assert "checkpoint-8, half-written" in caplog.text and "truncated" in caplog.text
    with pytest.raises(
        ValueError, match=r"checkpoint-8: the checkpoint is half-written.*resume from .*checkpoint-4"
    ):
        resolve_resume_checkpoint(str(truncated), tmp_path)
    assert resolve_resume_checkpoint(None, tmp_path) is None


def _tree(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("killed_while", ["setting_aside", "running", "restoring"])
def test_a_killed_rerun_gives_back_the_previous_run_whenever_it_was_killed(tmp_path, killed_while):
    """A re-run SIGKILLed while moving the finished run aside, while running, or while a later run was
    putting the finished run back: the next run refused for want of --overwrite_output_dir puts the
    finished run back, all of it and nothing of the killed run."""
    from hfkdq.run_dir import ASIDE, check_not_finished

    finished = {"results.json": "{}", "student/model.safetensors": "A", "checkpoint-4/optimizer.pt": "A"}
    aside = tmp_path / ASIDE
    for name, text in finished.items():
        target = (aside if name != "checkpoint-4/optimizer.pt" else tmp_path) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if killed_while == "running":
        (aside / ".complete").touch()
        os.replace(tmp_path / "checkpoint-4", aside / "checkpoint-4")
        (tmp_path / "checkpoint-2").mkdir()
        (tmp_path / "checkpoint-2" / "optimizer.pt").write_text("B")
        (tmp_path / "teacher").mkdir()
        (tmp_path / "teacher" / "model.safetensors").write_text("B")
    elif killed_while == "restoring":
        (aside / ".complete").touch()
        (aside / ".restoring").touch()
        os.replace(aside / "student", tmp_path / "student")  # restored before the kill
    (tmp_path / "notes.txt").write_text("the user's own file")

    with pytest.raises(FileExistsError, match="holds a finished run"):
        check_not_finished(tmp_path, overwrite=False)
    assert _tree(tmp_path) == finished | {"notes.txt": "the user's own file"}


@pytest.mark.parametrize("writer", ["atomic_output_dir", "write_json_atomically"])
def test_a_kill_while_writing_an_output_leaves_the_old_one(tmp_path, writer):
    """Quantized variants, exports and saved models go through `atomic_output_dir`, results through
    `write_json_atomically`: a SIGKILL mid-write leaves the previous output whole, and only scratch
    (which the next run in the directory removes) beside it."""
    target = tmp_path / ("onnx-int8" if writer == "atomic_output_dir" else "results.json")
    if writer == "atomic_output_dir":
        target.mkdir()
        (target / "model.onnx").write_text("previous")
        body = (
            "from hfkdq.outputs import atomic_output_dir\n"
            "with atomic_output_dir(sys.argv[1], overwrite=True) as staging:\n"
            "    (staging / 'model.onnx').write_text('half')\n"
            "    print('writing', flush=True); time.sleep(120)\n"
        )
    else:
        target.write_text('{"previous": true}')
        body = (
            "import hfkdq.outputs as outputs\n"
            "real = outputs.os.replace\n"
            "def slow_replace(*args):\n"
            "    print('writing', flush=True); time.sleep(120)\n"
            "outputs.os.replace = slow_replace\n"
            "outputs.write_json_atomically(pathlib.Path(sys.argv[1]), {'new': 1})\n"
        )
    script = "import pathlib, sys, time\n" + body
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(target)], env=ENV, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGKILL)
    process.wait()

    if writer == "atomic_output_dir":
        assert (target / "model.onnx").read_text() == "previous"
    else:
        assert target.read_text() == '{"previous": true}'
    from hfkdq.outputs import remove_stale_staging

    assert remove_stale_staging(tmp_path), "the killed write left only scratch, removable by the next run"
    assert sorted(path.name for path in tmp_path.iterdir()) == [target.name]
