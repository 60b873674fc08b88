"""Which checkpoint a resumed run continues from: the latest *complete* one.

A kill during ``Trainer._save_checkpoint`` leaves a ``checkpoint-N`` directory without its optimizer,
scheduler, RNG or trainer state, or with truncated weights; resuming from it fails deep inside
transformers ("Can't find a checkpoint index") or, worse, resumes with a fresh optimizer. A checkpoint
counts here only when every file a resume reads is present and the weights' header is readable.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from hfkdq.model_checks import safetensors_problem

logger = logging.getLogger(__name__)

LATEST = frozenset({"true", "latest", "last", "1", "yes"})
"""``--resume_from_checkpoint`` values that mean "the latest complete checkpoint in output_dir"."""

REQUIRED_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")
"""What a resume reads besides the weights (an RNG state file, rng_state*.pth, is checked too)."""


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why `checkpoint` cannot be resumed from, or None when it is complete."""
    missing = [name for name in REQUIRED_FILES if not (checkpoint / name).is_file()]
    if not any(checkpoint.glob("rng_state*.pth")):
        missing.append("rng_state.pth")
    weights = checkpoint / "model.safetensors"
    if not weights.is_file() and not (checkpoint / "pytorch_model.bin").is_file():
        missing.append("model.safetensors")
    if missing:
        return f"missing {', '.join(missing)}"
    if weights.is_file():
        problem = safetensors_problem(weights)
        if problem:
            return problem
    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return "trainer_state.json is truncated or not JSON"
    return None


def _step(path: Path) -> int:
    match = re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)", path.name)
    return int(match.group(1)) if match else -1


def checkpoints_newest_first(output_dir: str | Path) -> list[Path]:
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [path for path in output_dir.iterdir() if path.is_dir() and _step(path) >= 0]
    return sorted(found, key=_step, reverse=True)


def latest_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest ``checkpoint-N`` that can be resumed from, warning about each newer broken one."""
    for checkpoint in checkpoints_newest_first(output_dir):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        logger.warning("Skipping %s, half-written by an interrupted run (%s).", checkpoint, problem)
    return None


def resolve_resume_checkpoint(
    resume_from_checkpoint: str | bool | None, output_dir: str | Path
) -> str | None:
    """The checkpoint path to hand to ``Trainer.train``, or None to start from scratch.

    ``true``/``latest`` (or an empty value) means the latest complete checkpoint of `output_dir`, or
    step 0 when there is none yet; a path must name a complete checkpoint, else the error points to
    the newest one that is.
    """
    if resume_from_checkpoint in (None, False):
        return None
    value = str(resume_from_checkpoint).strip()
    if resume_from_checkpoint is True or value.lower() in LATEST or value == "":
        checkpoint = latest_complete_checkpoint(output_dir)
        if checkpoint is None:
            # Killed before its first student checkpoint (while fine-tuning the teacher, say): the
            # teacher resumes from its own checkpoints and the student starts at step 0.
            logger.warning(
                "No complete student checkpoint in %s: the student starts from step 0.", output_dir
            )
            return None
        logger.info("Resuming from %s, the latest complete checkpoint.", checkpoint)
        return str(checkpoint)
    checkpoint = Path(value)
    if not checkpoint.is_dir():
        raise ValueError(f"--resume_from_checkpoint {value}: no such checkpoint directory")
    problem = checkpoint_problem(checkpoint)
    if problem is not None:
        previous = latest_complete_checkpoint(checkpoint.parent)
        hint = f"resume from {previous} (the latest complete one)" if previous else "start from scratch"
        raise ValueError(
            f"--resume_from_checkpoint {value}: the checkpoint is half-written by an interrupted run ({problem}); "
            f"{hint}, or pass --resume_from_checkpoint true"
        )
    return str(checkpoint)


SHAPE_KEYS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")
"""Config values that decide a student's weight shapes: a checkpoint of another shape cannot be resumed."""


def check_checkpoint_fits(checkpoint: str | Path | None, planned: dict) -> None:
    """Refuse to resume `checkpoint` into a student of another shape (`planned`: SHAPE_KEYS values, None
    for unknown), naming the setting that changed; transformers would fail with a list of unexpected keys."""
    if checkpoint is None or not (Path(checkpoint) / "config.json").is_file():
        return
    saved = json.loads((Path(checkpoint) / "config.json").read_text(encoding="utf-8"))
    changed = {
        key: (saved[key], value)
        for key, value in planned.items()
        if key in SHAPE_KEYS and value is not None and key in saved and saved[key] != value
    }
    if changed:
        settings = ", ".join(f"{key} {old} (this run: {new})" for key, (old, new) in changed.items())
        layers = changed.get("num_hidden_layers")
        hint = (
            f"pass --student_num_layers {layers[0]} as the interrupted run did"
            if layers
            else ("resume with the interrupted run's student settings")
        )
        raise ValueError(
            f"--resume_from_checkpoint: {checkpoint} holds a student with {settings}: {hint}, or start a new run "
            "without --resume_from_checkpoint (with --overwrite_output_dir)"
        )
