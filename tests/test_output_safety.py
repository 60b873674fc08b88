"""Output safety as a property: whatever sequence of runs, kills, re-runs and resumes goes into one
output directory, the last finished run's files are never lost or mixed with another run's, and a
refused run changes nothing.

Every step is a real process running the NER recipe (forked from this one, so it starts with the
libraries imported and each step costs only its own run), and a kill is a SIGKILL at a random moment of
the run: no Python cleanup runs. Every run has its own seed, which the Trainer records in each
``training_args.bin`` and the recipe in ``results.json``: a finished directory whose files do not all
carry one seed is mixed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import pytest
import torch
from conftest import TEST_DATA
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from hfkdq.run_dir import run_entries

# 16 sentences, batch 8, 2 epochs: 4 steps, a checkpoint after each; the teacher trains 1 epoch.
SETTINGS = [
    str(TEST_DATA / "ner_recipe_tiny.yaml"),
    "--student_num_layers",
    "1",
    "--num_train_epochs",
    "2",
    "--save_strategy",
    "steps",
    "--save_steps",
    "1",
    "--dataloader_num_workers",
    "0",
]


def _launch(argv: list[str], log: Path, kill_after: float | None, kill_when=None) -> int | None:
    """Run the recipe in a child process; its exit status, or None when it was SIGKILLed first (after
    `kill_after` seconds, or once `kill_when()` holds)."""
    log.touch()
    pid = os.fork()
    if pid == 0:  # the child: the recipe's own entry point, stdout and stderr into `log`
        status = 2
        try:
            descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(descriptor, 1)
            os.dup2(descriptor, 2)
            sys.stdout = sys.stderr = open(1, "w", closefd=False)  # noqa: SIM115
            logging.root.handlers = []  # pytest's capture: the recipe logs into `log` instead
            from hfkdq.commands.distill import recipe_main
            from hfkdq.tasks.ner import NerDataArguments, build_ner_task

            status = recipe_main(NerDataArguments, build_ner_task, argv)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            os._exit(status)
    deadline = None if kill_after is None else time.monotonic() + kill_after
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if (deadline is not None and time.monotonic() >= deadline) or (kill_when and kill_when()):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(paths) -> dict[str, str]:
    return {
        str(file.relative_to(root)): _digest(file)
        for root, top in paths
        for file in ([top] if top.is_file() else sorted(top.rglob("*")))
        if file.is_file()
    }


def run_files(output_dir: Path) -> dict[str, str]:
    """What a user finds of the run in `output_dir`: outputs and checkpoints, with their checksums."""
    return _files((output_dir, entry) for entry in run_entries(output_dir))


def everything(output_dir: Path) -> dict[str, str]:
    """Every file under `output_dir`, hidden ones included."""
    return _files([(output_dir, output_dir)]) if output_dir.is_dir() else {}


def seeds_of(output_dir: Path) -> set[int]:
    """The seeds recorded by every file of the run that records one."""
    seeds = {json.loads((output_dir / "results.json").read_text())["distillation"]["seed"]}
    for entry in run_entries(output_dir):
        for arguments in [entry] if entry.is_file() else entry.rglob("training_args.bin"):
            if arguments.name == "training_args.bin":
                seeds.add(torch.load(arguments, weights_only=False).seed)
    return seeds


def assert_one_finished_run(output_dir: Path, seed: int) -> None:
    """A finished run's outputs, all written by the run with `seed`."""
    for name in ("results.json", "student/model.safetensors", "teacher/model.safetensors"):
        assert (output_dir / name).is_file(), f"a finished run without {name}"
    assert seeds_of(output_dir) == {seed}, f"files of several runs: seeds {seeds_of(output_dir)}"


class OneOutputDirectory:
    """Runs into one output directory, checked against a model of it: the last finished run's files
    (`finished`), and `pending`, the seed of a killed run that may have finished just before its kill."""

    teacher: Path
    root: Path
    data: list[str]

    def __init__(self):
        self.output_dir = self.root / f"run-{time.monotonic_ns()}"
        self.seeds = iter(range(100, 10_000))
        self.finished: dict[str, str] | None = None
        self.finished_seed: int | None = None
        self.pending: int | None = None
        self.killed_seed: int | None = None
        self.stable = True  # the last step was not a kill: the directory is at rest
        self.duration = 10.0

    def launch(self, seed: int, overwrite: bool, resume: bool, kill_after: float | None):
        argv = [*SETTINGS, *self.data, "--teacher_name_or_path", str(self.teacher)]
        argv += ["--output_dir", str(self.output_dir)]
        argv += ["--seed", str(seed)]
        argv += ["--overwrite_output_dir", "true"] if overwrite else []
        argv += ["--resume_from_checkpoint", "true"] if resume else []
        log = self.root / f"{self.output_dir.name}-{seed}-{time.monotonic_ns()}.log"
        status = _launch(argv, log, kill_after)
        return status, log.read_text()

    def a_finished_run(self):
        seed = next(self.seeds)
        started = time.monotonic()
        status, log = self.launch(seed, overwrite=False, resume=False, kill_after=None)
        assert status == 0, log[-3000:]
        self.duration = time.monotonic() - started
        self.record_finished(seed)

    def record_finished(self, seed: int) -> None:
        assert_one_finished_run(self.output_dir, seed)
        self.finished, self.finished_seed = run_files(self.output_dir), seed
        self.pending, self.killed_seed, self.stable = None, None, True

    def run(self, overwrite: bool, resume: bool, kill_at: float | None):
        seed = self.killed_seed if resume and self.killed_seed is not None else next(self.seeds)
        before = everything(self.output_dir)
        kill_after = None if kill_at is None else kill_at * self.duration
        status, log = self.launch(seed, overwrite, resume, kill_after)
        certainly_finished = self.finished is not None and self.pending is None
        if status is None:  # killed: it may have finished just before, if it was allowed to replace
            if overwrite or not certainly_finished:
                self.pending = seed
            self.killed_seed, self.stable = seed, False
            return
        if status == 0:
            assert overwrite or not certainly_finished, (
                "a run without --overwrite_output_dir replaced a finished run"
            )
            self.record_finished(seed)
            return
        assert status == 1, log[-3000:]
        errors = [line for line in log.splitlines() if "error:" in line]
        assert len(errors) == 1 and "Traceback" not in log, log[-3000:]
        if self.stable:
            assert everything(self.output_dir) == before, "a refused run changed the directory"
        if run_files(self.output_dir) != self.finished:
            # The killed run had finished before its kill: then its files, and only its, are here.
            assert self.pending is not None, "the last finished run's files were lost or changed"
            self.finished, self.finished_seed = run_files(self.output_dir), self.pending
            assert_one_finished_run(self.output_dir, self.pending)
        if not overwrite:
            assert "--overwrite_output_dir" in errors[0]
        else:
            assert resume and "nothing to resume" in errors[0], errors[0]
        assert self.finished is not None, f"refused with no finished run to protect: {errors[0]}"
        self.pending, self.stable = None, True

    def teardown(self):
        if self.stable and self.finished is not None:
            assert run_files(self.output_dir) == self.finished


@pytest.fixture
def tiny_ner_files(tmp_path) -> list[str]:
    from hfkdq.resources import btc_files

    corpus = btc_files()
    return [
        "--train_file",
        _first_sentences(corpus["train"], 16, tmp_path / "train.conll"),
        "--validation_file",
        _first_sentences(corpus["validation"], 8, tmp_path / "validation.conll"),
    ]


def _first_sentences(source: str, count: int, target: Path) -> str:
    """The first `count` sentences of a CoNLL file: reading the whole corpus would cost each run seconds."""
    blocks = Path(source).read_text(encoding="utf-8").strip().split("\n\n")
    target.write_text("\n\n".join(blocks[:count]) + "\n", encoding="utf-8")
    return str(target)


STEP = st.tuples(
    st.booleans(),  # --overwrite_output_dir
    st.booleans(),  # --resume_from_checkpoint true
    st.none() | st.floats(min_value=0.0, max_value=1.0),  # SIGKILL after this share of a run, or never
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks the recipe processes")
def test_the_last_finished_run_survives_any_sequence_of_runs_kills_and_resumes(
    tiny_teacher_dir, tiny_ner_files, tmp_path
):
    """After a finished run, any sequence of (overwrite?, resume?, killed when?) runs into its directory."""
    OneOutputDirectory.data = tiny_ner_files
    OneOutputDirectory.teacher = tiny_teacher_dir
    OneOutputDirectory.root = tmp_path

    @settings(
        max_examples=2,  # and the explicit example: 3 sequences, about 15 runs
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: each step is a process
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(STEP, min_size=3, max_size=4))
    @example([(True, False, 0.5), (False, False, None), (True, True, None)])  # issue 20, case 1
    def sequences(steps):
        directory = OneOutputDirectory()
        directory.a_finished_run()
        for overwrite, resume, kill_at in steps:
            directory.run(overwrite, resume, kill_at)
        directory.teardown()

    sequences()


def _distilling_with_seed(output_dir: Path, seed: int) -> bool:
    """Whether the run with `seed` has saved a student checkpoint in `output_dir`."""
    for arguments in output_dir.glob("checkpoint-*/training_args.bin"):
        try:
            if torch.load(arguments, weights_only=False).seed == seed:
                return True
        except Exception:  # noqa: BLE001 - being written
            continue
    return False


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks the recipe processes")
def test_a_rerun_killed_mid_run_leaves_the_finished_run_to_a_run_without_overwrite(
    tiny_teacher_dir, tiny_ner_files, tmp_path
):
    """Issue 20, case 1: run A finishes; run B with --overwrite_output_dir is SIGKILLed mid-run; run C
    without --overwrite_output_dir must not replace A (it used to restore A, then overwrite it)."""
    output_dir = tmp_path / "run"
    base = [
        *SETTINGS,
        *tiny_ner_files,
        "--teacher_name_or_path",
        str(tiny_teacher_dir),
        "--output_dir",
        str(output_dir),
    ]
    assert _launch([*base, "--seed", "1"], tmp_path / "a.log", None) == 0
    finished = run_files(output_dir)

    killed = _launch(
        [*base, "--seed", "2", "--overwrite_output_dir", "true"],
        tmp_path / "b.log",
        None,
        kill_when=lambda: _distilling_with_seed(output_dir, 2),
    )
    assert killed is None, "B finished before it could be killed"

    assert _launch([*base, "--seed", "3"], tmp_path / "c.log", None) == 1
    error = (tmp_path / "c.log").read_text().strip().splitlines()[-1]
    assert "holds a finished run" in error and "--overwrite_output_dir" in error
    assert run_files(output_dir) == finished, "A's files are back, unchanged, and nothing of B is left"
    assert_one_finished_run(output_dir, 1)
