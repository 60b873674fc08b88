"""One run per output directory: a lock against concurrent runs, and no silent overwrite of a finished one.

Two runs writing one ``output_dir`` interleave checkpoints, student and ``results.json`` from different
runs; a re-run into a finished directory replaces what the user may still need. Both are refused with
a message that says what to do, before any work: the Trainer convention is ``--overwrite_output_dir``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from hfkdq.layout import (
    PLAIN_STUDENT_DIR,
    QUANTIZED_DIR,
    RESULTS_FILE,
    STUDENT_DIR,
    TEACHER_CACHE_DIR,
    TEACHER_DIR,
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


def recover_interrupted_run(output_dir: str | Path) -> list[str]:
    """Undo what a killed run left half-done: put back the previous run's outputs it had moved aside.

    `replacing_previous_run` restores them itself when a run fails with an exception; a SIGKILL or a
    power cut gives it no chance, so the next run does it first (under the lock, so the owner is dead).
    Returns the names restored.
    """
    output_dir = Path(output_dir)
    restored: list[str] = []
    for aside in sorted(output_dir.glob(".previous-run-*")) if output_dir.is_dir() else []:
        parts = aside.name.split("-")
        pid = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
        if pid is not None and pid != os.getpid() and _process_alive(pid):
            continue
        for kept in sorted(aside.iterdir()):
            target = output_dir / kept.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(kept, target)
            restored.append(kept.name)
        shutil.rmtree(aside, ignore_errors=True)
        logger.warning(
            "A run into %s was interrupted; the previous run's %s are restored.",
            output_dir,
            ", ".join(restored),
        )
    return restored


def check_not_finished(output_dir: str | Path, overwrite: bool, resuming: bool = False) -> None:
    """A directory that holds a finished run is replaced only with ``overwrite`` (or continued when resuming)."""
    output_dir = Path(output_dir)
    if (output_dir / FINISHED_MARKER).is_file() and not overwrite and not resuming:
        raise FileExistsError(
            f"{output_dir} holds a finished run ({FINISHED_MARKER}); pass --overwrite_output_dir to replace it, "
            "or choose another --output_dir"
        )


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


RUN_ARTIFACTS = (STUDENT_DIR, TEACHER_DIR, PLAIN_STUDENT_DIR, QUANTIZED_DIR, TEACHER_CACHE_DIR, RESULTS_FILE)
"""What a finished run leaves in its output directory (checkpoints are the Trainer's, handled by it)."""


@contextlib.contextmanager
def replacing_previous_run(
    output_dir: str | Path, artifacts: tuple[str, ...] = RUN_ARTIFACTS
) -> Iterator[None]:
    """Move a finished run's artifacts aside; delete them once the new run succeeds, restore them if it fails.

    Without this, a re-run that fails after saving its student would leave that student beside the old
    ``results.json``: a directory whose parts come from different runs.
    """
    output_dir = Path(output_dir)
    present = [name for name in artifacts if (output_dir / name).exists()]
    if not present:
        yield
        return
    aside = output_dir / f".previous-run-{os.getpid()}-{int(time.time())}"
    aside.mkdir()
    for name in present:
        os.replace(output_dir / name, aside / name)
    try:
        yield
    except BaseException:
        for name in present:
            target = output_dir / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink()
            os.replace(aside / name, target)
        shutil.rmtree(aside, ignore_errors=True)
        logger.warning("The run failed; the previous run's outputs in %s are restored.", output_dir)
        raise
    shutil.rmtree(aside, ignore_errors=True)
