"""Outputs that appear whole or not at all: model directories, quantized variants, results files.

Everything a run writes is built under a temporary sibling name and renamed into place only when
complete, so an interrupted or failing run never leaves a half-written model that a later step (or a
user) would load. The staging name is unique per run (`tempfile.mkdtemp`): two runs writing the same
output, or a run after a crash, never share or delete each other's staging directory. The rename is
atomic on one filesystem, which is why staging happens next to the target, not in /tmp.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from transformers import Trainer


def check_output_dir(output_dir: str | Path, overwrite: bool = False) -> Path:
    """Fail before any work if the output exists and may not be replaced."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"{output_dir} is a file, not a directory: choose another --output_dir")
    if output_dir.exists() and not overwrite:
        raise FileExistsError(
            f"{output_dir} already exists; pass overwrite=True (CLI: --overwrite) to replace it."
        )
    return output_dir


@functools.cache
def _directory_mode() -> int:
    """The mode `mkdir` gives a new directory under this process's umask (read once: it cannot be read
    without being set)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o777 & ~umask


def remove_stale_staging(directory: str | Path) -> list[Path]:
    """Delete the ``.<name>.partial-*`` scratch that an interrupted run left in `directory`.

    Only call this while holding the directory's run lock: then no live run owns any of them.
    """
    directory = Path(directory)
    removed = []
    for stale in sorted(directory.glob(".*.partial-*")) if directory.is_dir() else []:
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed


def new_staging_dir(output_dir: str | Path) -> Path:
    """A new, empty directory next to `output_dir`, named ``.<name>.partial-<random>`` (unique per call).

    `mkdtemp` makes it private (0700); it gets the usual mode back, so the renamed output is readable
    by whoever could read a directory `mkdir` had made.
    """
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
    staging.chmod(_directory_mode())
    return staging


def swap_in(staging: str | Path, output_dir: str | Path) -> None:
    """Rename the complete `staging` directory to `output_dir`, replacing what was there.

    The previous output is first moved aside (under a unique name) and deleted only once the new one is
    in place, so at no moment is there a half-replaced `output_dir`.
    """
    staging, output_dir = Path(staging), Path(output_dir)
    if output_dir.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.old-", dir=output_dir.parent))
        os.replace(output_dir, retired / output_dir.name)
        os.replace(staging, output_dir)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, output_dir)


@contextlib.contextmanager
def atomic_output_dir(output_dir: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging directory next to `output_dir`; rename it into place on success.

    On an exception the staging directory is removed and an existing `output_dir` is untouched.
    """
    output_dir = check_output_dir(output_dir, overwrite)
    staging = new_staging_dir(output_dir)
    try:
        yield staging
        swap_in(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_json_atomically(path: str | Path, payload: Any) -> Path:
    """Write `payload` as indented JSON to `path` through a unique temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its 0600 mode would make the results private; "x" never reuses an existing file.
    staging = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:12]}")
    try:
        with staging.open("x", encoding="utf-8") as file:
            file.write(json.dumps(payload, indent=2, default=str) + "\n")
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return path


def save_model_atomically(trainer: Trainer, output_dir: str | Path) -> None:
    """`trainer.save_model` into a staging directory, then swap it in as `output_dir`.

    Call it on every process, like `Trainer.save_model`: under several processes (DDP, FSDP, DeepSpeed)
    `save_model` must run on all of them (it may gather sharded weights) while only the saving process
    writes. The world process zero therefore creates the staging directory and broadcasts its (random)
    path, so every rank saves to the same place; once all ranks are done (a sharded save writes a file per
    rank) it alone swaps the directory in, and all ranks wait for that.
    """
    from accelerate.utils import broadcast_object_list

    output_dir = Path(output_dir)
    is_zero = trainer.is_world_process_zero()
    staging = [str(new_staging_dir(output_dir)) if is_zero else None]
    if trainer.accelerator.num_processes > 1:
        broadcast_object_list(staging, from_process=0)
    try:
        trainer.save_model(staging[0])
        trainer.accelerator.wait_for_everyone()
        if is_zero:
            swap_in(staging[0], output_dir)
    except BaseException:
        if is_zero:
            shutil.rmtree(staging[0], ignore_errors=True)
        raise
    trainer.accelerator.wait_for_everyone()
