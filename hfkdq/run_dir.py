"""One run per output directory: a lock against concurrent runs, and no silent overwrite of a finished one.

Two runs writing one ``output_dir`` interleave checkpoints, student and ``results.json`` from different
runs; a re-run into a finished directory replaces what the user may still need. Both are refused with
a message that says what to do, before any work: the Trainer convention is ``--overwrite_output_dir``.

A run that may replace the previous one sets its files aside in ``.previous-run`` and deletes them only
when it finishes (one rename, the commit). Killed at any moment, it leaves a state the next run settles
first: ``--resume_from_checkpoint true --overwrite_output_dir`` continues it, and any other run puts the
previous run back, whole, before it decides anything; so a run without ``--overwrite_output_dir`` can
never replace a finished run, and a refused one leaves the directory as the last finished run left it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from hfkdq.layout import (
    PLAIN_STUDENT_DIR,
    QUANTIZED_DIR,
    RESULTS_FILE,
    STUDENT_DIR,
    TEACHER_CACHE_DIR,
    TEACHER_DIR,
    UNPRUNED_STUDENT_DIR,
)

logger = logging.getLogger(__name__)

LOCK_FILE = ".hfkdq-run.lock"
FINISHED_MARKER = RESULTS_FILE


class OutputDirectoryInUseError(RuntimeError, OSError):
    """Another live run holds the directory's lock.

    An OSError too, so the recipes and ``hfkdq`` report it in one line like any other bad path."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_lock(lock: Path) -> dict:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def run_lock(output_dir: str | Path) -> Iterator[Path]:
    """Hold ``<output_dir>/.hfkdq-run.lock`` for the run; a lock left by a dead process is taken over."""
    output_dir = Path(output_dir)
    created = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)
    lock = output_dir / LOCK_FILE
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _attempt in range(2):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_lock(lock)
            same_host = holder.get("host") == record["host"]
            if holder.get("pid") and same_host and not _process_alive(int(holder["pid"])):
                logger.warning(
                    "Taking over %s left by process %s, which is no longer running.", lock, holder["pid"]
                )
                lock.unlink(missing_ok=True)
                continue
            raise OutputDirectoryInUseError(
                f"another run (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
                f"{holder.get('started', '?')}) is writing to {output_dir}; wait for it to finish or choose another "
                f"--output_dir (if no such run exists, delete {lock})"
            ) from None
        with os.fdopen(descriptor, "w") as handle:
            json.dump(record, handle)
        break
    try:
        yield lock
    finally:
        if _read_lock(lock).get("pid") == record["pid"]:
            lock.unlink(missing_ok=True)
        if created and not any(output_dir.iterdir()):
            output_dir.rmdir()  # a run that failed before writing anything leaves no directory behind


RUN_ARTIFACTS = (
    STUDENT_DIR,
    TEACHER_DIR,
    PLAIN_STUDENT_DIR,
    UNPRUNED_STUDENT_DIR,
    QUANTIZED_DIR,
    TEACHER_CACHE_DIR,
    RESULTS_FILE,
)
"""What a finished run leaves in its output directory."""

TRAINING_STATE = ("teacher-training", "plain-student-training", "prune-recovery-training")
"""Where a run keeps what a resume reads, besides the Trainer's ``checkpoint-N`` directories."""

RESUMABLE = (TEACHER_DIR, TEACHER_CACHE_DIR, *TRAINING_STATE)
"""What ``--resume_from_checkpoint`` continues with (with the ``checkpoint-N`` directories)."""

ASIDE = ".previous-run"
"""Where a run keeps the run it replaces until it finishes: restored if it fails or is killed."""

_COMPLETE = ".complete"  # in ASIDE: every entry of the replaced run is inside
_RESTORING = ".restoring"  # in ASIDE: a restore is under way; the entries still inside go back


def _is_run_entry(path: Path) -> bool:
    return path.name in RUN_ARTIFACTS or path.name in TRAINING_STATE or _is_checkpoint(path)


def _is_checkpoint(path: Path) -> bool:
    return path.is_dir() and re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-\d+", path.name) is not None


def run_entries(output_dir: str | Path) -> list[Path]:
    """The files and directories of the run in `output_dir` (outputs and training state), nothing else
    the directory may hold."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    return sorted(path for path in output_dir.iterdir() if _is_run_entry(path))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _retire(directory: Path) -> None:
    """Delete `directory` after one atomic rename, so a kill mid-delete leaves no half of it under its name."""
    retired = directory.with_name(f".retired-{uuid.uuid4().hex[:12]}")
    os.replace(directory, retired)
    shutil.rmtree(retired, ignore_errors=True)


def finished_run(output_dir: str | Path) -> Path | None:
    """The ``results.json`` of the last run in `output_dir` that finished, or None; read only.

    While a later run replaces it (killed or still running), the finished run waits in ``.previous-run``
    and the ``results.json`` at the top, if any, belongs to the unfinished run.
    """
    output_dir = Path(output_dir)
    aside = output_dir / ASIDE
    candidates = [aside / FINISHED_MARKER]
    settled = aside.is_dir() and (aside / _COMPLETE).is_file() and not (aside / _RESTORING).exists()
    if not settled:
        candidates.append(output_dir / FINISHED_MARKER)
    return next((path for path in candidates if path.is_file()), None)


def refusal(output_dir: str | Path, overwrite: bool, resuming: bool = False) -> str | None:
    """Why a run may not write to `output_dir` (a one-line message naming the fix), or None."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        return f"--output_dir {output_dir} is a file, not a directory: choose another --output_dir"
    finished = finished_run(output_dir)
    if finished is None:
        return None
    if not overwrite:
        return (
            f"{output_dir} holds a finished run ({FINISHED_MARKER}); pass --overwrite_output_dir to replace it, "
            "or choose another --output_dir"
        )
    if resuming and not (output_dir / ASIDE).is_dir():
        return (
            f"{output_dir} holds a finished run and no interrupted one, so there is nothing to resume: drop "
            "--resume_from_checkpoint (--overwrite_output_dir then replaces the run), or choose another --output_dir"
        )
    return None


def check_not_finished(
    output_dir: str | Path, overwrite: bool, resuming: bool = False, restore: bool = True
) -> None:
    """Refuse, before any work, a run that would replace a finished one without ``--overwrite_output_dir``.

    A finished run that an interrupted (killed) run had set aside is first put back (with `restore`, on
    the main process, when no live run holds the directory), so the refused run leaves the directory as
    the last finished run left it.
    """
    message = refusal(output_dir, overwrite, resuming)
    if message is None:
        return
    if restore and (Path(output_dir) / ASIDE).is_dir():
        with contextlib.suppress(OutputDirectoryInUseError), run_lock(output_dir):
            settle_interrupted_run(output_dir)
            if (Path(output_dir) / ASIDE).is_dir() and refusal(output_dir, overwrite, resuming):
                restore_previous_run(output_dir)
    raise FileExistsError(message)


def settle_interrupted_run(output_dir: str | Path) -> None:
    """Finish the bookkeeping a killed run left half-done (call it holding the run lock).

    A run killed while setting the previous run aside gets the rest moved; one killed while restoring
    it gets the restore finished. Either way the directory is then in one of two states: no previous
    run aside, or all of it aside (``.complete``).
    """
    output_dir = Path(output_dir)
    for retired in output_dir.glob(".retired-*") if output_dir.is_dir() else []:
        shutil.rmtree(retired, ignore_errors=True)
    aside = output_dir / ASIDE
    if not aside.is_dir():
        return
    if (aside / _RESTORING).exists():
        restore_previous_run(output_dir)
    elif not (aside / _COMPLETE).is_file():
        _set_aside(output_dir)


def _set_aside(output_dir: Path) -> None:
    aside = output_dir / ASIDE
    aside.mkdir(exist_ok=True)
    for entry in run_entries(output_dir):
        os.replace(entry, aside / entry.name)
    (aside / _COMPLETE).touch()


def restore_previous_run(output_dir: str | Path) -> list[str]:
    """Put back the run set aside in ``.previous-run``: what a later, unfinished run wrote is deleted
    first, so the directory holds the previous run's files and no others of the run. Restartable: a kill
    midway leaves a ``.restoring`` mark, and the next call finishes. Returns the names restored."""
    output_dir = Path(output_dir)
    aside = output_dir / ASIDE
    if not (aside / _RESTORING).exists():
        for entry in run_entries(output_dir):
            _remove(entry)
        (aside / _RESTORING).touch()
    restored = []
    for kept in sorted(aside.iterdir()):
        if kept.name in (_COMPLETE, _RESTORING):
            continue
        target = output_dir / kept.name
        if target.exists() or target.is_symlink():
            _remove(target)
        os.replace(kept, target)
        restored.append(kept.name)
    _retire(aside)
    logger.warning(
        "A run into %s did not finish; the previous run's %s are restored.", output_dir, ", ".join(restored)
    )
    return restored


@contextlib.contextmanager
def claimed_run(output_dir: str | Path, overwrite: bool, resuming: bool = False) -> Iterator[None]:
    """Hand `output_dir` to one run (call it holding the run lock); the previous run is replaced only
    when this one finishes.

    - A run that may not write here (see `refusal`) is refused; an interrupted run's leftovers are first
      rolled back, so the last finished run is what the directory holds.
    - A new run sets the previous run's files (outputs, checkpoints) aside in ``.previous-run``; what an
      interrupted run left while another was already aside is deleted.
    - A resumed run keeps the interrupted run's teacher and checkpoints and drops its partial outputs.
    - On success the run set aside is deleted (one rename: the commit); on an error it is restored. On
      a kill, or Ctrl-C, it stays aside: ``--resume_from_checkpoint true`` continues the interrupted run,
      and any other run restores the previous one first.
    """
    output_dir = Path(output_dir)
    settle_interrupted_run(output_dir)
    aside = output_dir / ASIDE
    message = refusal(output_dir, overwrite, resuming)
    if message is not None:
        if aside.is_dir():
            restore_previous_run(output_dir)
        raise FileExistsError(message)
    if resuming:
        for entry in run_entries(output_dir):
            if entry.name not in RESUMABLE and not _is_checkpoint(entry):
                _remove(entry)
    elif aside.is_dir():
        for entry in run_entries(output_dir):
            _remove(entry)  # an interrupted run's leftovers; the run before it waits aside
    elif run_entries(output_dir):
        _set_aside(output_dir)
    try:
        yield
    except Exception:
        if aside.is_dir():
            restore_previous_run(output_dir)
        raise
    except BaseException:
        if aside.is_dir():
            logger.warning(
                "Interrupted: the previous run's outputs wait in %s; --resume_from_checkpoint true "
                "--overwrite_output_dir continues this run, any other run into %s restores them.",
                aside,
                output_dir,
            )
        raise
    if aside.is_dir():
        _retire(aside)
