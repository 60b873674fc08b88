"""A model directory checked file by file before it is loaded, with errors that name the file.

transformers reports a missing or truncated file as `HFValidationError` (it took the path for a Hub
id), `AttributeError ... endswith`, or a `SafetensorError` without a path. A user needs "X is not a
saved model: missing config.json" instead, and needs it before a teacher is fine-tuned for an hour.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from hfkdq.layout import WEIGHT_FILES
from hfkdq.layout import WEIGHT_INDEX_FILES as INDEX_FILES

TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "spm.model",
    "sentencepiece.bpe.model",
)


class NotASavedModelError(ValueError):
    """A path that should hold a `save_pretrained` (classification) model does not: the message names
    the missing or broken file. The one definition: `hfkdq.quantization` re-exports it."""


def looks_like_local_path(name_or_path: str) -> bool:
    """A path, not a Hub id: it exists, or it is written like a path (./x, /x, ~/x, x/y/z, C:\\x)."""
    return (
        Path(name_or_path).expanduser().exists()
        or name_or_path.startswith((".", "/", "~"))
        or name_or_path.count("/") > 1
        or os.sep != "/"
        and os.sep in name_or_path
    )


def _fail(path: Path, what: str, problem: str) -> None:
    raise NotASavedModelError(f"{what} {path} is not a saved model: {problem}")


def _check_config(path: Path, what: str) -> None:
    config_file = path / "config.json"
    if not config_file.is_file():
        _fail(path, what, "missing config.json (save it with model.save_pretrained(dir))")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        _fail(path, what, f"corrupt config.json ({error})")
    if not isinstance(config, dict) or "model_type" not in config:
        _fail(path, what, "config.json has no model_type: it is not a transformers model config")


def _check_safetensors(file: Path, what: str, model_dir: Path) -> None:
    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            _fail(model_dir, what, f"corrupt {file.name} (truncated: {size} bytes)")
        header_length = struct.unpack("<Q", head)[0]
        if header_length > size - 8:
            _fail(
                model_dir,
                what,
                f"corrupt {file.name} (truncated: header says {header_length} bytes, file has {size})",
            )
        try:
            header = json.loads(handle.read(header_length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            _fail(model_dir, what, f"corrupt {file.name} (unreadable header)")
    end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    if 8 + header_length + end > size:
        _fail(model_dir, what, f"corrupt {file.name} (truncated: {size} of {8 + header_length + end} bytes)")


def safetensors_problem(file: Path) -> str | None:
    """What is wrong with a .safetensors file (empty, truncated, unreadable header), or None."""
    if file.stat().st_size == 0:
        return f"corrupt {file.name} (empty file)"
    try:
        _check_safetensors(file, "checkpoint", file.parent)
    except NotASavedModelError as error:
        return str(error).split("is not a saved model: ", 1)[-1]
    return None


def _check_weights(path: Path, what: str) -> None:
    for name in WEIGHT_FILES:
        file = path / name
        if file.is_file():
            if file.stat().st_size == 0:
                _fail(path, what, f"corrupt {name} (empty file)")
            if name.endswith(".safetensors"):
                _check_safetensors(file, what, path)
            return
    for name in INDEX_FILES:
        index_file = path / name
        if index_file.is_file():
            try:
                shards = set(json.loads(index_file.read_text(encoding="utf-8"))["weight_map"].values())
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
                _fail(path, what, f"corrupt {name}")
            missing = sorted(shard for shard in shards if not (path / shard).is_file())
            if missing:
                _fail(path, what, f"missing weight shard(s) {', '.join(missing)} listed in {name}")
            for shard in shards:
                if shard.endswith(".safetensors"):
                    _check_safetensors(path / shard, what, path)
            return
    _fail(path, what, f"missing weights ({' or '.join(WEIGHT_FILES)})")


REWRITE_HINT = "write it again (model.save_pretrained(dir), or hfkdq quantize --overwrite for a variant)"


def check_weight_files(path: str | Path, what: str = "model") -> None:
    """The weights of a saved model or variant are whole: every safetensors file (or shard) has all the
    bytes its header promises, every ONNX graph parses. Read before loading, so a truncated file is named
    with the fix instead of surfacing as a `SafetensorError` or an ONNX Runtime protobuf error."""
    path = Path(path)
    try:
        if any((path / name).is_file() for name in (*WEIGHT_FILES, *INDEX_FILES)):
            _check_weights(path, what)
        for graph in sorted(path.glob("*.onnx")):
            _check_onnx(graph, what, path)
    except NotASavedModelError as error:
        raise NotASavedModelError(f"{error}; {REWRITE_HINT}") from None


def _check_onnx(file: Path, what: str, model_dir: Path) -> None:
    if file.stat().st_size == 0:
        _fail(model_dir, what, f"corrupt {file.name} (empty file)")
    try:
        import onnx
    except ImportError:  # the ONNX extra is missing: loading the variant says so
        return
    try:
        onnx.load(str(file), load_external_data=False)
    except Exception as error:  # noqa: BLE001 - protobuf's DecodeError and onnx's own errors alike
        _fail(
            model_dir, what, f"corrupt {file.name} (truncated or not an ONNX model: {type(error).__name__})"
        )


def check_model_source(name_or_path: str, what: str = "model", need_tokenizer: bool = True) -> None:
    """Check a local model directory file by file; Hub ids pass (unless the Hub is off and nothing is cached).

    `what` names the role in messages ("teacher", "student"); `need_tokenizer` also requires the files
    of a tokenizer, which the teacher's directory must carry (the student reads the teacher's ids).
    """
    if not looks_like_local_path(name_or_path):
        return
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise NotASavedModelError(
            f"{what} {path} does not exist: pass a directory written by save_pretrained"
        )
    if not path.is_dir():
        raise NotASavedModelError(f"{what} {path} is a file; pass the directory written by save_pretrained")
    if not any(path.iterdir()):
        _fail(path, what, "the directory is empty")
    _check_config(path, what)
    _check_weights(path, what)
    if need_tokenizer and not any((path / name).is_file() for name in TOKENIZER_FILES):
        _fail(
            path,
            what,
            f"missing tokenizer files (one of {', '.join(TOKENIZER_FILES[:3])}); save the tokenizer beside the "
            "model with tokenizer.save_pretrained(dir)",
        )
