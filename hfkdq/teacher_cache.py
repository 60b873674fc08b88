"""Teacher-output cache: run the teacher over the training set once, distill from its stored logits.

A frozen teacher gives the same logits for the same input ids every epoch, so running it on every
training step (and again for every student of a study) only costs time. `build_teacher_cache` stores
them once in a `datasets` Arrow directory (optionally only the top-k classes), keyed to

- the training examples: one key per example, a hash of the ids the teacher reads (and token type
  ids), in order. A student with its own tokenizer trains on a paired set (`hfkdq.data.paired`) that
  carries the teacher's ids of the same text beside its own; keys come from those, so one cache
  serves every student of the teacher, whatever its tokenizer (the word alignment is applied when a
  batch is read, `hfkdq.data.word_alignment.to_student_frame`);
- the teacher: a hash of its config and every weight.

`TeacherOutputCache.attach` checks both before training and refuses a stale cache (another teacher,
other data, another tokenization) with a message that says so, then adds the cached columns to the
training set. `DistillationTrainer(teacher_cache=...)` does this itself, keeps the columns through
`remove_unused_columns` (they are part of the student wrapper's forward signature), pads them in the
collator, and skips the teacher pass whenever the active loss terms read only its logits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, concatenate_datasets, load_from_disk

from hfkdq.data.paired import TEACHER_PREFIX, teacher_view
from hfkdq.outputs import atomic_output_dir

CACHE_METADATA = "hfkdq_teacher_cache.json"
LOGITS_COLUMN = "teacher_logits"
TOPK_INDICES_COLUMN = "teacher_topk_indices"
KEY_INPUTS = ("input_ids", "token_type_ids")
FORMAT_VERSION = 1


class StaleTeacherCacheError(ValueError):
    """The cache was built by another teacher or for other training examples."""


# Where and how a teacher was stored, not what it computes: ``save_pretrained`` fills in
# ``architectures`` and ``dtype``, and a reload sets ``_name_or_path``. The class and each tensor's
# dtype are hashed instead.
PROVENANCE_CONFIG_KEYS = frozenset(
    {"_name_or_path", "_commit_hash", "transformers_version", "architectures", "dtype", "torch_dtype"}
)


def teacher_fingerprint(teacher: torch.nn.Module) -> str:
    """sha256 of the teacher's config and weights: any fine-tuning step or other checkpoint changes it."""
    digest = hashlib.sha256(type(teacher).__name__.encode())
    config = getattr(teacher, "config", None)
    if config is not None:
        # Where the weights were loaded from is not what they are: the same teacher saved and reloaded
        # (another process, a later run) must keep its fingerprint.
        described = {k: v for k, v in config.to_dict().items() if k not in PROVENANCE_CONFIG_KEYS}
        digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    for name, tensor in sorted(teacher.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def example_keys(dataset: Dataset) -> list[str]:
    """One key per example: a hash of the inputs the teacher reads (the ids, not the labels)."""
    dataset = teacher_view(dataset)
    columns = [column for column in KEY_INPUTS if column in dataset.column_names]
    keys = []
    for row in dataset.select_columns(columns):
        digest = hashlib.blake2b(digest_size=12)
        for column in columns:
            digest.update(column.encode())
            digest.update(json.dumps(row[column]).encode())
        keys.append(digest.hexdigest())
    return keys


def _data_fingerprint(keys: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


REQUIRED_METADATA = ("format_version", "teacher_fingerprint", "num_examples", "data_fingerprint")


def cache_problem(path: str | Path) -> str | None:
    """Why `path` cannot serve as a teacher-output cache, or None: a whole cache, an empty directory or
    nothing yet (both get one built). Read before any work, so a foreign or damaged directory is named
    before the teacher is fine-tuned, not after."""
    path = Path(path)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return None
    if not path.is_dir():
        return "it is a file"
    metadata_file = path / CACHE_METADATA
    if not metadata_file.is_file():
        return f"it holds other files and no {CACHE_METADATA}"
    try:
        metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return f"its {CACHE_METADATA} is not valid JSON"
    missing = [key for key in REQUIRED_METADATA if not isinstance(metadata, dict) or key not in metadata]
    if missing:
        return f"its {CACHE_METADATA} lacks {', '.join(missing)}"
    if metadata["format_version"] != FORMAT_VERSION:
        return f"it has cache format {metadata['format_version']}, this hfkdq reads {FORMAT_VERSION}"
    try:
        files = [entry["filename"] for entry in json.loads((path / "state.json").read_text())["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return "its Arrow table is missing or damaged (state.json)"
    absent = [name for name in files if not (path / name).is_file()]
    return f"its Arrow table is missing {', '.join(absent)}" if absent else None


@dataclass(frozen=True)
class TeacherOutputCache:
    """A cache directory written by `build_teacher_cache`: its metadata and its Arrow table."""

    path: Path
    metadata: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> TeacherOutputCache:
        path = Path(path)
        metadata_file = path / CACHE_METADATA
        if not metadata_file.is_file():
            raise FileNotFoundError(
                f"{path} is not a teacher-output cache (no {CACHE_METADATA}); build one with "
                "hfkdq.teacher_cache.build_teacher_cache"
            )
        problem = cache_problem(path)
        if problem is not None:
            raise StaleTeacherCacheError(
                f"{path} is not a usable teacher-output cache: {problem}; rebuild it"
            )
        return cls(path, json.loads(metadata_file.read_text(encoding="utf-8")))

    @property
    def top_k(self) -> int | None:
        return self.metadata.get("top_k")

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns `attach` adds, which the collator pads and `compute_loss` reads."""
        return (LOGITS_COLUMN, TOPK_INDICES_COLUMN) if self.top_k else (LOGITS_COLUMN,)

    def check(self, teacher: torch.nn.Module, dataset: Dataset) -> None:
        """Refuse a cache built by another teacher or for other examples, saying which."""
        fingerprint = teacher_fingerprint(teacher)
        if fingerprint != self.metadata["teacher_fingerprint"]:
            raise StaleTeacherCacheError(
                f"teacher cache {self.path} was built by another teacher (fingerprint "
                f"{self.metadata['teacher_fingerprint'][:12]}…, built from {self.metadata.get('teacher_name_or_path')}); "
                f"this teacher is {fingerprint[:12]}…. Rebuild the cache with this teacher."
            )
        if len(dataset) != self.metadata["num_examples"]:
            raise StaleTeacherCacheError(
                f"teacher cache {self.path} holds {self.metadata['num_examples']} examples but the training set has "
                f"{len(dataset)}: it was built for other data. Rebuild the cache for this training set."
            )
        keys = example_keys(dataset)
        if _data_fingerprint(keys) != self.metadata["data_fingerprint"]:
            cached_keys = load_from_disk(str(self.path))["example_key"]
            differing = [index for index, (a, b) in enumerate(zip(keys, cached_keys, strict=True)) if a != b]
            raise StaleTeacherCacheError(
                f"teacher cache {self.path} was built for other training examples: {len(differing)} of {len(keys)} "
                f"differ (first at index {differing[0] if differing else '?'}; other data, order, tokenizer or "
                "max_seq_length). Rebuild the cache for this training set."
            )

    def attach(self, teacher: torch.nn.Module, dataset: Dataset) -> Dataset:
        """The training set with the cached columns added, after `check`."""
        self.check(teacher, dataset)
        cached = load_from_disk(str(self.path)).select_columns(list(self.columns))
        return concatenate_datasets(
            [dataset.remove_columns([c for c in self.columns if c in dataset.column_names]), cached], axis=1
        )


@torch.inference_mode()
def build_teacher_cache(
    teacher: torch.nn.Module,
    dataset: Dataset,
    data_collator: Callable,
    output_dir: str | Path,
    *,
    top_k: int | None = None,
    batch_size: int = 64,
    teacher_name_or_path: str | None = None,
    overwrite: bool = False,
) -> TeacherOutputCache:
    """Run `teacher` over `dataset` in order and store its logits per example (per real token for NER).

    A paired dataset (a student with its own tokenizer) is read through its teacher columns, so
    `data_collator` must pad the teacher's tokens (the teacher task's collator).

    ``top_k`` keeps only the k largest logits per position (the others count as -inf, probability
    0): for label sets large enough that full logits would dominate the cache.
    """
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
    if len(dataset) == 0:
        raise ValueError("cannot build a teacher cache for an empty training set")
    teacher.eval()
    device = next(teacher.parameters()).device
    keys = example_keys(dataset)
    dataset = teacher_view(dataset)
    inputs = [
        column
        for column in ("input_ids", "attention_mask", "token_type_ids")
        if column in dataset.column_names
    ]
    rows: dict[str, list] = {LOGITS_COLUMN: []}
    if top_k:
        rows[TOPK_INDICES_COLUMN] = []
    view = dataset.select_columns(inputs)
    for start in range(0, len(view), batch_size):
        features = [view[index] for index in range(start, min(start + batch_size, len(view)))]
        batch = data_collator(features)
        logits = teacher(**{name: batch[name].to(device) for name in inputs}).logits.float().cpu()
        for row, feature in zip(logits, features, strict=True):
            if row.dim() == 2:  # token classification: keep the real tokens only
                row = row[: len(feature["input_ids"])]
            if top_k:
                values, indices = row.topk(min(top_k, row.shape[-1]), dim=-1)
                rows[LOGITS_COLUMN].append(values.tolist())
                rows[TOPK_INDICES_COLUMN].append(indices.tolist())
            else:
                rows[LOGITS_COLUMN].append(row.tolist())
    table = Dataset.from_dict({"example_key": keys, **rows})
    metadata = {
        "format_version": FORMAT_VERSION,
        "teacher_fingerprint": teacher_fingerprint(teacher),
        "teacher_name_or_path": teacher_name_or_path,
        "num_examples": len(dataset),
        "data_fingerprint": _data_fingerprint(keys),
        "top_k": top_k,
        "num_labels": getattr(getattr(teacher, "config", None), "num_labels", None),
    }
    with atomic_output_dir(output_dir, overwrite=overwrite) as staging:
        table.save_to_disk(str(staging))
        (staging / CACHE_METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
    return TeacherOutputCache(Path(output_dir), metadata)


class CachedTeacherCollator:
    """Collates the task's features with its own collator and pads the cached teacher columns alongside.

    Padded positions get logit 0 and index 0; every loss term masks them out (padding, label -100).
    Batches without cached columns (evaluation) pass through unchanged.
    """

    def __init__(self, base_collator: Callable, columns: Sequence[str]):
        self.base_collator = base_collator
        self.columns = tuple(columns)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if not features or self.columns[0] not in features[0]:
            return self.base_collator(features)
        cached = {column: [feature[column] for feature in features] for column in self.columns}
        features = [{k: v for k, v in feature.items() if k not in self.columns} for feature in features]
        batch = self.base_collator(features)
        # Per-token logits line up with the teacher's tokens: its own where the set is paired.
        ids = TEACHER_PREFIX + "input_ids" if TEACHER_PREFIX + "input_ids" in batch else "input_ids"
        length = batch[ids].shape[1] if ids in batch else None
        for column, values in cached.items():
            batch[column] = _pad(
                values, length, torch.long if column == TOPK_INDICES_COLUMN else torch.float32
            )
        return batch


def _pad(values: list, length: int | None, dtype: torch.dtype) -> torch.Tensor:
    tensors = [torch.tensor(value, dtype=dtype) for value in values]
    if tensors[0].dim() == 1:  # sequence classification: one row of logits per example
        return torch.stack(tensors)
    length = length or max(tensor.shape[0] for tensor in tensors)
    padded = torch.zeros(len(tensors), length, tensors[0].shape[-1], dtype=dtype)
    for index, tensor in enumerate(tensors):
        padded[index, : tensor.shape[0]] = tensor
    return padded


def cached_teacher_logits(inputs: dict[str, Any], num_labels: int) -> torch.Tensor | None:
    """Pop the cached columns from a batch; dense teacher logits (top-k: -inf elsewhere), or None."""
    values = inputs.pop(LOGITS_COLUMN, None)
    indices = inputs.pop(TOPK_INDICES_COLUMN, None)
    if values is None or indices is None:
        return values
    dense = torch.full(
        (*values.shape[:-1], num_labels), float("-inf"), dtype=values.dtype, device=values.device
    )
    return dense.scatter(-1, indices, values)
