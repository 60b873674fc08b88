"""What every backend shares: reading the fp32 student directory and describing the variant it writes.

Outputs are written through `hfkdq.outputs.atomic_output_dir` (complete or absent, never half-written).
Each output carries `hfkdq_quantization.json`, which says how it was made and how to load it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfkdq.environment import library_versions
from hfkdq.heads import auto_class_for, head_of
from hfkdq.layout import METADATA_FILE, WEIGHT_FILES, WEIGHT_INDEX_FILES
from hfkdq.model_checks import NotASavedModelError, check_weight_files

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedModel:
    """A saved fp32 classification model: where it is, its config, and which head it has."""

    path: Path
    config: Any
    head: str
    """'sequence' or 'token'."""

    @property
    def model_type(self) -> str:
        return self.config.model_type

    def auto_class(self) -> type:
        """The `AutoModelFor...` class that loads this head."""
        return auto_class_for(self.head)

    def __fspath__(self) -> str:
        """Where it is saved: a `SavedModel` goes wherever a path does (`Path(model)`, `open`, ...)."""
        return str(self.path)


def inspect_model_dir(model_dir: str | Path) -> SavedModel:
    """Check that `model_dir` holds an fp32 HF classification model, and describe it.

    Fails early with a message naming what is missing, rather than deep inside a backend.
    """
    path = Path(model_dir)
    if not path.is_dir():
        raise NotASavedModelError(f"{path} is not a directory; pass the directory a model was saved to.")
    if (path / METADATA_FILE).is_file():
        method = read_metadata(path).get("method", "?")
        raise NotASavedModelError(
            f"{path} is already a quantized variant ({method}); quantize the fp32 student directory instead."
        )
    if not (path / "config.json").is_file():
        raise NotASavedModelError(
            f"{path} has no config.json, so it is not a saved Hugging Face model "
            "(expected the output of model.save_pretrained(dir))."
        )
    if not any((path / name).is_file() for name in (*WEIGHT_FILES, *WEIGHT_INDEX_FILES)):
        raise NotASavedModelError(
            f"{path} has a config.json but no weights ({', '.join(WEIGHT_FILES[:2])}); "
            "save the model with model.save_pretrained(dir)."
        )
    check_weight_files(path, "model")
    config = _read_config(path)
    if getattr(config, "quantization_config", None):
        raise NotASavedModelError(f"{path} is already quantized (its config has a quantization_config).")
    return SavedModel(path=path, config=config, head=head_of(config, path))


def inspect_evaluable_dir(model_dir: str | Path) -> SavedModel:
    """Describe a saved fp32 model OR a quantized variant directory, for code that only reads it.

    Evaluation and data loading need the head, the label maps and the tokenizer, which every variant
    carries (config.json + tokenizer files + `hfkdq_quantization.json`); `inspect_model_dir` refuses
    variants because quantizing one again makes no sense, which is not true of evaluating it.
    """
    path = Path(model_dir)
    metadata = read_metadata(path) if path.is_dir() else {}
    if not metadata:
        return inspect_model_dir(path)
    if not (path / "config.json").is_file():
        raise NotASavedModelError(
            f"{path} is a quantized variant ({metadata.get('method', '?')}) without its config.json; "
            "write it again with hfkdq quantize."
        )
    check_weight_files(path, f"{metadata.get('method', 'quantized')} variant")
    config = _read_config(path)
    return SavedModel(path=path, config=config, head=metadata.get("head") or head_of(config, path))


def _read_config(path: Path) -> Any:
    """The directory's config.json through transformers, or a `NotASavedModelError` saying why not."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as error:
        raise NotASavedModelError(f"{path}/config.json cannot be read by transformers: {error}") from error
    return config


def save_tokenizer(source: str | Path, target: str | Path) -> bool:
    """Copy the tokenizer of `source` into `target`, so the variant loads and runs on its own.

    Returns False (with a warning) when `source` has no tokenizer: the weights are still usable.
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError, TypeError) as error:
        logger.warning(
            "%s has no loadable tokenizer (%s); the quantized variant will lack one.", source, error
        )
        return False
    tokenizer.save_pretrained(str(target))
    return True


def write_metadata(
    directory: str | Path,
    *,
    method: str,
    backend: str,
    source: SavedModel,
    options: Mapping[str, Any],
    load_with: str,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write `hfkdq_quantization.json`: the method, its options, the source model and how to load it."""
    record = {
        "format_version": 1,
        "method": method,
        "backend": backend,
        "head": source.head,
        "model_type": source.model_type,
        "source_model": str(source.path.resolve()),
        "options": {key: _jsonable(value) for key, value in options.items()},
        "load_with": load_with,
        "versions": library_versions(),
        **(dict(extra) if extra else {}),
    }
    path = Path(directory) / METADATA_FILE
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    return path


def read_metadata(directory: str | Path) -> dict[str, Any]:
    """The `hfkdq_quantization.json` of a variant, or {} for a plain (fp32) model directory."""
    path = Path(directory) / METADATA_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return str(value)
