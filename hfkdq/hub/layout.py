"""What a push publishes from a run directory, and what it never uploads.

A run is read as a recipe's output directory (`student/`, `quantized/<method>/`), a bare student or a
bare variant (`find_layout`); every file under it is either published or excluded with a reason
(`excluded_reason`). What is never uploaded: the teacher, checkpoints, optimizer/scheduler/RNG
states, `training_args.bin` (a pickle, and it holds local paths), caches, staging directories, lock
files, hidden files, and anything whose name looks like a secret. File names come from `hfkdq.layout`.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfkdq.heads import head_of_architectures
from hfkdq.layout import (
    METADATA_FILE,
    PLOT_FILE,
    QUANTIZED_DIR,
    RESULTS_FILE,
    STUDENT_DIR,
    VERIFICATION_FILE,
    WEIGHT_FILES,
    WEIGHT_INDEX_FILES,
)

MAIN = "main"
"""The revision the fp32 student is published on; each variant gets a branch named after its method."""
CARD_FILE = "README.md"
QUANTIZED_RESULTS_FILE = "quantized_results.json"
"""The run's `quantized/results.json`, as published on `main`: the measurements the card's table shows."""
VARIANT_WEIGHTS = {
    "onnxruntime": "*.onnx",
    "bitsandbytes": "model.safetensors",
    "torch": "quantized_state_dict.pt",
}
"""Backend -> the weights file (pattern) a variant of it cannot be without."""
LOCAL_PATH_KEYS = ("source_model", "reference")
"""Keys of a variant's JSON files that hold local paths; published as the repo reference instead."""

EXCLUDED_DIRS = {
    "teacher": "the teacher is not published",
    "teacher-cache": "teacher-output cache",
    "plain-student": "the no-distillation baseline is not published",
    "runs": "training logs",
    "__pycache__": "cache",
}
EXCLUDED_DIR_PATTERNS = {
    "checkpoint-*": "training checkpoint",
    "*-training": "training scratch directory",
}
EXCLUDED_FILES = {
    "training_args.bin": "pickled training arguments (local paths; unpickling runs code)",
    "optimizer.pt": "optimizer state",
    "scheduler.pt": "scheduler state",
    "trainer_state.json": "trainer state",
    "scaler.pt": "grad-scaler state",
}
EXCLUDED_FILE_PATTERNS = {
    "rng_state*": "RNG state",
    "*.arrow": "dataset cache",
    "*.lock": "lock file",
    "*.tmp": "temporary file",
    "*.pem": "looks like a secret",
    "*.key": "looks like a secret",
    "*.p12": "looks like a secret",
    "*.pfx": "looks like a secret",
    "id_rsa*": "looks like a secret",
    "id_ed25519*": "looks like a secret",
    "*secret*": "looks like a secret",
    "credentials*": "looks like a secret",
    "*password*": "looks like a secret",
    "*token*": "looks like a secret",
}
TOKENIZER_FILE_PATTERNS = ("tokenizer*", "special_tokens_map.json", "added_tokens.json")
"""Files with "token" in their name that are tokenizers, not secrets."""


def excluded_reason(relative_path: str | Path) -> str | None:
    """Why a file (path relative to the published directory) is never uploaded, or None when it may be."""
    parts = Path(relative_path).parts
    for directory in parts[:-1]:
        if directory.startswith("."):
            return "hidden or staging directory"
        if directory in EXCLUDED_DIRS:
            return EXCLUDED_DIRS[directory]
        for pattern, reason in EXCLUDED_DIR_PATTERNS.items():
            if fnmatch.fnmatch(directory, pattern):
                return reason
    name = parts[-1]
    lowered = name.lower()
    if lowered.startswith(".env") or lowered in (".netrc", ".git-credentials"):
        return "looks like a secret"
    if name.startswith("."):
        return "hidden or staging file"
    if name in EXCLUDED_FILES:
        return EXCLUDED_FILES[name]
    for pattern, reason in EXCLUDED_FILE_PATTERNS.items():
        if fnmatch.fnmatch(lowered, pattern):
            if pattern == "*token*" and any(fnmatch.fnmatch(name, ok) for ok in TOKENIZER_FILE_PATTERNS):
                continue
            return reason
    return None


def check_repo_id(repo_id: str) -> str:
    """The repo id, validated as the Hub does, with the expected form in the message."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(repo_id, str) or not repo_id:
        raise ValueError("a repo id is needed: --repo_id namespace/name (e.g. you/minilm-btc-student)")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(
            f"{repo_id!r} is not a valid Hub repo id: expected 'namespace/name' (letters, digits, '-', '_', '.'; "
            f"at most 96 characters), e.g. you/minilm-btc-student. {error}"
        ) from error
    return repo_id


def hub_endpoint() -> str:
    """The Hub the files go to (HF_ENDPOINT, or huggingface.co): named in the card and in errors."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def _missing(directory: Path, name: str) -> ValueError:
    return ValueError(f"{directory} is not a saved model: missing {name}")


def _check_model_dir(directory: Path) -> dict[str, Any]:
    """The variant metadata ({} for an fp32 model) of a directory that holds a complete saved model."""
    if not (directory / "config.json").is_file():
        raise _missing(directory, "config.json")
    metadata = read_json(directory / METADATA_FILE) or {}
    backend = metadata.get("backend")
    if backend is None:
        if not any((directory / name).is_file() for name in (*WEIGHT_FILES, *WEIGHT_INDEX_FILES)):
            raise _missing(directory, f"{WEIGHT_FILES[0]} (or {WEIGHT_FILES[1]})")
    elif backend in VARIANT_WEIGHTS and not list(directory.glob(VARIANT_WEIGHTS[backend])):
        raise _missing(directory, VARIANT_WEIGHTS[backend])
    return metadata


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} cannot be read as JSON: {error}") from error


@dataclass
class RunLayout:
    """Where the pieces of a run are: a recipe's output dir, a bare student, or a bare variant."""

    root: Path
    student: Path | None
    variants: dict[str, Path]
    """Method name (= branch) -> variant directory."""
    run_results: dict[str, Any] | None
    quantized_results: dict[str, Any] | None
    plot: Path | None


def find_layout(path: str | Path, run_results: dict[str, Any] | None = None) -> RunLayout:
    """Read a directory as a run (`student/`, `quantized/<method>/`), a bare student or a bare variant.

    Fails with "X is not a saved model: missing FILE" when it is none of them, before any network call.
    `run_results`: the run's results, when the caller holds them (a recipe publishing itself): its
    results.json and its "quantization" are then not read back from disk.
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory: pass a run's output directory or a saved model")

    def variants_in(quantized: Path) -> dict[str, Path]:
        found = {}
        for directory in sorted(
            p for p in quantized.iterdir() if p.is_dir() and not excluded_reason(p.name + "/x")
        ):
            if (directory / METADATA_FILE).is_file():
                metadata = _check_model_dir(directory)
                found[metadata.get("method") or directory.name] = directory
        return found

    if (
        (root / STUDENT_DIR).is_dir()
        or (root / RESULTS_FILE).is_file()
        and not (root / "config.json").is_file()
    ):
        student = root / STUDENT_DIR
        if not student.is_dir():
            raise _missing(root, f"{STUDENT_DIR}/config.json")
        if _check_model_dir(student):
            raise ValueError(f"{student} is a quantized variant, not the fp32 student")
        quantized = root / QUANTIZED_DIR
        if run_results is None:
            run_results = read_json(root / RESULTS_FILE)
        quantized_results = (run_results or {}).get("quantization") or read_json(quantized / RESULTS_FILE)
        return RunLayout(
            root,
            student,
            variants_in(quantized) if quantized.is_dir() else {},
            run_results,
            quantized_results,
            quantized / PLOT_FILE if (quantized / PLOT_FILE).is_file() else None,
        )
    metadata = _check_model_dir(root)
    if metadata:  # a bare variant: measured in its parent quantized/ directory, when it is there
        parent = root.parent
        return RunLayout(
            root,
            None,
            {metadata.get("method") or root.name: root},
            read_json(parent.parent / RESULTS_FILE),
            read_json(parent / RESULTS_FILE),
            parent / PLOT_FILE if (parent / PLOT_FILE).is_file() else None,
        )
    return RunLayout(root, root, {}, None, None, None)


def directory_files(directory: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """(path in repo -> file, excluded path -> reason) for everything under `directory`."""
    files, excluded = {}, {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() or p.is_symlink()):
        relative = path.relative_to(directory).as_posix()
        reason = excluded_reason(relative)
        if reason is None and path.is_symlink() and not path.resolve().is_relative_to(directory.resolve()):
            reason = "symbolic link out of the directory"
        if reason is None and relative == CARD_FILE:
            reason = "replaced by the generated model card"
        if reason:
            excluded[relative] = reason
        else:
            files[relative] = path
    return files, excluded


def published_json(path: Path, repo_id: str) -> bytes:
    """A variant's JSON with local paths replaced by the repo they are published in."""
    data = json.loads(path.read_text())
    for key in LOCAL_PATH_KEYS:
        if isinstance(data.get(key), str):
            data[key] = f"{repo_id} (revision {MAIN})"
    return (json.dumps(data, indent=2) + "\n").encode()


def revision_files(directory: Path, repo_id: str) -> tuple[dict[str, Path | bytes], dict[str, str]]:
    """What one revision publishes from `directory`: (path in repo -> file, or JSON rewritten without
    local paths), and (excluded path -> why)."""
    files: dict[str, Path | bytes] = {}
    listed, excluded = directory_files(directory)
    for name, file in listed.items():
        files[name] = published_json(file, repo_id) if name in (METADATA_FILE, VERIFICATION_FILE) else file
    return files, excluded


def head_of_directory(directory: Path) -> str:
    """The head of a saved model from its config.json; 'sequence' when the config names none."""
    config = read_json(directory / "config.json") or {}
    return head_of_architectures(config.get("architectures") or []) or "sequence"
