"""Publish a run to the Hugging Face Hub: the fp32 student on `main`, each quantized variant on its own branch.

    hfkdq push outputs/ner-btc-minilm --repo_id you/minilm-btc-student --max_metric_drop 1.0

Layout (one repo, one card, one `model-index`): the fp32 student is on `main`; each variant is on a
branch named after its method (`onnx-int8`, `bnb-8bit`, ...), so it loads with
``ORTModelForTokenClassification.from_pretrained(repo_id, revision="onnx-int8")`` or, for bitsandbytes
(whose config.json carries the `quantization_config`), ``AutoModelFor...from_pretrained(repo_id,
revision="bnb-8bit")``. Branches rather than one repo per variant: the variants are versions of one
model, found from one page, and a variant cannot be published without the student it was made from.

Everything is checked before anything is uploaded: the repo id, the threshold, that the directory holds
a saved model, the quality gate, offline mode, the token. The exact file list of every revision is
printed before the first byte goes out. What is never uploaded (`excluded_reason`): the teacher,
checkpoints, optimizer/scheduler/RNG states, `training_args.bin` (a pickle, and it holds local paths),
caches, staging directories, lock files, hidden files, and anything whose name looks like a secret.

Each revision mirrors its file list: a file hfkdq no longer publishes there is deleted, and an unchanged
file is not re-sent (the Hub reports each file's git oid at pre-upload, and the client drops files whose
oid matches), so pushing the same run twice makes no commit and an update commits only what changed.
A commit is all or nothing, so a push interrupted by a network error leaves every revision either
updated or untouched; running the same command again completes it.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfkdq.heads import head_of_architectures
from hfkdq.validation import check_max_metric_drop

MAIN = "main"
CARD_FILE = "README.md"
PLOT_FILE = "pareto.png"
RUN_RESULTS_FILE = "results.json"
QUANTIZED_RESULTS_FILE = "quantized_results.json"
"""The run's `quantized/results.json`, as published on `main`: the measurements the card's table shows."""
METADATA_FILE = "hfkdq_quantization.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
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


class HubPushError(RuntimeError):
    """Talking to the Hub failed (HTTP error, dropped connection); the message says what is safe to do."""


# ----- what gets uploaded ---------------------------------------------------------------------------
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


@dataclass
class RevisionUpload:
    """One revision's upload: path in repo -> local file or generated bytes (the card, rewritten JSON)."""

    revision: str
    title: str
    source: Path | None
    files: dict[str, Path | bytes] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    """Local relative path -> why it is not uploaded."""

    def size_of(self, path: str) -> int:
        content = self.files[path]
        return len(content) if isinstance(content, bytes) else content.stat().st_size


@dataclass
class GateFailure:
    """A variant the quality gate kept back: how much it lost (points), or why it could not be judged."""

    variant: str
    drop_points: float | None
    allowed: float
    metric: str | None
    reason: str = ""

    def describe(self) -> str:
        if self.drop_points is None:
            return f"variant {self.variant!r} not pushed: {self.reason} (--max_metric_drop {self.allowed:g})"
        return (
            f"variant {self.variant!r} not pushed: it lost {self.drop_points:.2f} {self.metric} points vs the fp32 "
            f"student, more than the allowed {self.allowed:g}"
        )


@dataclass
class PushPlan:
    """Everything a push will do, computed locally before any network call (what --dry_run prints)."""

    repo_id: str
    source: Path
    uploads: list[RevisionUpload]
    blocked: list[GateFailure]
    card: str

    def describe(self) -> str:
        """The exact file list per revision, and what was kept back and why."""
        lines = [f"Repository {self.repo_id}:"]
        for upload in self.uploads:
            lines.append(f"  revision {upload.revision!r} ({upload.title}), {len(upload.files)} files:")
            for path in sorted(upload.files):
                lines.append(f"    {path}  ({upload.size_of(path):,} bytes)")
            for path, reason in sorted(upload.excluded.items()):
                lines.append(f"    not uploaded: {path}  ({reason})")
        for failure in self.blocked:
            lines.append(f"  BLOCKED: {failure.describe()}")
        return "\n".join(lines)


@dataclass
class PushResult:
    repo_id: str
    commits: dict[str, str]
    """Revision -> commit id after the push (unchanged when nothing changed)."""
    blocked: list[GateFailure]
    plan: PushPlan


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


def _missing(directory: Path, name: str) -> ValueError:
    return ValueError(f"{directory} is not a saved model: missing {name}")


def _check_model_dir(directory: Path) -> dict[str, Any]:
    """The variant metadata ({} for an fp32 model) of a directory that holds a complete saved model."""
    if not (directory / "config.json").is_file():
        raise _missing(directory, "config.json")
    metadata = _read_json(directory / METADATA_FILE) or {}
    backend = metadata.get("backend")
    if backend is None:
        if not any((directory / name).is_file() for name in WEIGHT_FILES):
            raise _missing(directory, f"{WEIGHT_FILES[0]} (or {WEIGHT_FILES[1]})")
    elif backend in VARIANT_WEIGHTS and not list(directory.glob(VARIANT_WEIGHTS[backend])):
        raise _missing(directory, VARIANT_WEIGHTS[backend])
    return metadata


def _read_json(path: Path) -> dict[str, Any] | None:
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


def find_layout(path: str | Path) -> RunLayout:
    """Read a directory as a run (`student/`, `quantized/<method>/`), a bare student or a bare variant.

    Fails with "X is not a saved model: missing FILE" when it is none of them, before any network call.
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
        (root / "student").is_dir()
        or (root / RUN_RESULTS_FILE).is_file()
        and not (root / "config.json").is_file()
    ):
        student = root / "student"
        if not student.is_dir():
            raise _missing(root, "student/config.json")
        if _check_model_dir(student):
            raise ValueError(f"{student} is a quantized variant, not the fp32 student")
        quantized = root / "quantized"
        return RunLayout(
            root,
            student,
            variants_in(quantized) if quantized.is_dir() else {},
            _read_json(root / RUN_RESULTS_FILE),
            _read_json(quantized / "results.json"),
            quantized / PLOT_FILE if (quantized / PLOT_FILE).is_file() else None,
        )
    metadata = _check_model_dir(root)
    if metadata:  # a bare variant: measured in its parent quantized/ directory, when it is there
        parent = root.parent
        return RunLayout(
            root,
            None,
            {metadata.get("method") or root.name: root},
            _read_json(parent.parent / RUN_RESULTS_FILE),
            _read_json(parent / "results.json"),
            parent / PLOT_FILE if (parent / PLOT_FILE).is_file() else None,
        )
    return RunLayout(root, root, {}, None, None, None)


def _directory_files(directory: Path) -> tuple[dict[str, Path], dict[str, str]]:
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


def _published_json(path: Path, repo_id: str) -> bytes:
    """A variant's JSON with local paths replaced by the repo they are published in."""
    data = json.loads(path.read_text())
    for key in LOCAL_PATH_KEYS:
        if isinstance(data.get(key), str):
            data[key] = f"{repo_id} (revision {MAIN})"
    return (json.dumps(data, indent=2) + "\n").encode()


# ----- the quality gate -------------------------------------------------------------------------------
def _variant_rows(quantized_results: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    rows = (quantized_results or {}).get("variants") or []
    return {row["name"]: row for row in rows if row.get("role") == "variant"}


def gate(
    variants: Mapping[str, Path], quantized_results: Mapping[str, Any] | None, max_metric_drop: float | None
) -> list[GateFailure]:
    """The variants that may not be pushed under `max_metric_drop` (points lost vs the fp32 student).

    A variant without a measured drop cannot pass a gate: publishing it would claim a check never made.
    """
    if max_metric_drop is None:
        return []
    rows, metric = _variant_rows(quantized_results), (quantized_results or {}).get("main_metric")
    failures = []
    for name in variants:
        row = rows.get(name)
        points = ((row or {}).get("deltas") or {}).get("metric_points")
        if row is None:
            failures.append(
                GateFailure(name, None, max_metric_drop, metric, "no measurement in quantized/results.json")
            )
        elif points is None or not math.isfinite(points):
            failures.append(
                GateFailure(name, None, max_metric_drop, metric, f"its measured {metric} drop is {points}")
            )
        elif -points > max_metric_drop:
            failures.append(GateFailure(name, -points, max_metric_drop, metric))
    return failures


# ----- the model card ---------------------------------------------------------------------------------
BTC_CITATION = """@inproceedings{derczynski-etal-2016-broad,
    title = "Broad {T}witter Corpus: A Diverse Named Entity Recognition Resource",
    author = "Derczynski, Leon and Bontcheva, Kalina and Roberts, Ian",
    booktitle = "Proceedings of {COLING} 2016, the 26th International Conference on Computational Linguistics",
    year = "2016",
    pages = "1169--1179",
}"""


def _is_btc(data: Mapping[str, Any] | None) -> bool:
    files = (data or {}).get("files") or {}
    return bool(files) and all(
        Path(str(p)).as_posix().rsplit("/", 3)[-3:-1] == ["resources", "btc"] for p in files.values()
    )


def _is_hub_id(value: str | None) -> bool:
    if not value or value.startswith((".", "/", "~")) or Path(value).exists() or value.count("/") > 1:
        return False
    try:
        check_repo_id(value)
    except ValueError:
        return False
    return True


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _millions(value: Any) -> str:
    return f"{value / 1e6:.1f}M" if isinstance(value, int | float) else "?"


def _class_names(head: str) -> tuple[str, str, str]:
    """(transformers Auto class, Optimum ORT class, pipeline tag) of a head."""
    if head == "token":
        return "AutoModelForTokenClassification", "ORTModelForTokenClassification", "token-classification"
    return "AutoModelForSequenceClassification", "ORTModelForSequenceClassification", "text-classification"


def _load_code(repo_id: str, revision: str, backend: str | None, head: str) -> tuple[str, str]:
    """(import line, one-line load call) of one revision: what the card shows per variant."""
    auto, ort, _ = _class_names(head)
    if revision == MAIN:
        return f"from transformers import {auto}", f'model = {auto}.from_pretrained("{repo_id}")'
    if backend == "onnxruntime":
        return (
            f'from optimum.onnxruntime import {ort}  # pip install "optimum-onnx[onnxruntime]"',
            f'model = {ort}.from_pretrained("{repo_id}", revision="{revision}")',
        )
    if backend == "bitsandbytes":
        return (
            f"from transformers import {auto}  # pip install bitsandbytes; config.json quantizes on load",
            f'model = {auto}.from_pretrained("{repo_id}", revision="{revision}")',
        )
    return (
        "from huggingface_hub import snapshot_download; from hfkdq.quantization import load_variant  # pip install hfkdq",
        f'model = load_variant(snapshot_download("{repo_id}", revision="{revision}"))',
    )


def build_model_card(
    repo_id: str,
    layout: RunLayout,
    published: Mapping[str, str | None],
    blocked: list[GateFailure],
    head: str,
    license: str = "apache-2.0",  # noqa: A002 - the card field's name
    endpoint: str | None = None,
) -> str:
    """The card (YAML metadata with `model-index` + markdown) shown on every revision of the repo.

    `published` maps each revision to its variant backend (None for the fp32 student). Figures come from
    the run's results.json (distillation) and quantized/results.json (variants), never re-measured here.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    run = layout.run_results or {}
    quantized = layout.quantized_results or {}
    teacher, student = run.get("teacher") or {}, run.get("student") or {}
    metric = (run.get("task") or {}).get("main_metric") or quantized.get("main_metric") or "accuracy"
    data = run.get("data") or {}
    btc = _is_btc(data)
    dataset_name = data.get("dataset_name")
    dataset_label = (
        "Broad Twitter Corpus (BTC)" if btc else dataset_name or data.get("task_name") or "the task's data"
    )
    auto, _, pipeline_tag = _class_names(head)
    # A teacher fine-tuned by the run lives in a local directory; its Hub base is what a reader can follow.
    base_model = teacher.get("base_model") or teacher.get("name_or_path")
    base_model = base_model if _is_hub_id(base_model) else None
    teacher_label = base_model or Path(str(teacher.get("name_or_path", "unknown"))).name

    eval_results = []
    for split, metrics in (student.get("metrics") or {}).items():
        if isinstance(metrics.get(metric), int | float):
            eval_results.append(
                EvalResult(
                    task_type=pipeline_tag,
                    dataset_type=dataset_name or ("broad_twitter_corpus" if btc else "custom"),
                    dataset_name=dataset_label,
                    dataset_split=split,
                    metric_type=metric,
                    metric_value=round(float(metrics[metric]), 4),
                )
            )
    card_data = ModelCardData(
        model_name=repo_id,
        license=license,
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        base_model=base_model,
        datasets=[dataset_name] if _is_hub_id(dataset_name) else None,
        metrics=[metric],
        tags=[
            "hfkdq",
            "knowledge-distillation",
            "quantization",
            *sorted({b for b in published.values() if b}),
        ],
        eval_results=eval_results or None,
    )

    parts = [
        f"# {repo_id.split('/')[-1]}",
        "",
        f"A {student.get('num_layers', '?')}-layer student distilled with "
        "hfkdq from the teacher "
        f"`{teacher_label}` ({teacher.get('num_layers', '?')} layers) on {dataset_label}, "
        f"for {pipeline_tag.replace('-', ' ')}. The fp32 student is on `main`; each quantized variant is on its own "
        "branch of this repository (see *Revisions*).",
        "",
        "## Revisions",
        "",
        "| Revision | What | Load with |",
        "|---|---|---|",
    ]
    for revision, backend in published.items():
        what = "fp32 student" if revision == MAIN else f"{revision} ({backend})"
        parts.append(f"| `{revision}` | {what} | `{_load_code(repo_id, revision, backend, head)[1]}` |")
    for failure in blocked:
        parts.append(
            f"| – | {failure.variant}: **not published** ({failure.describe().split(': ', 1)[1]}) | – |"
        )

    parts += ["", "## Results", ""]
    if teacher.get("metrics") or student.get("metrics"):
        parts += [f"Teacher vs student, `{metric}` on each split (from `results.json`):", ""]
        parts += [f"| Split | Teacher {metric} | Student {metric} |", "|---|---:|---:|"]
        for split in dict.fromkeys([*(teacher.get("metrics") or {}), *(student.get("metrics") or {})]):
            parts.append(
                f"| {split} | {_fmt((teacher.get('metrics') or {}).get(split, {}).get(metric))} "
                f"| {_fmt((student.get('metrics') or {}).get(split, {}).get(metric))} |"
            )
        parts += [
            "",
            f"Teacher: {teacher.get('num_layers', '?')} layers, {_millions(teacher.get('num_parameters'))} parameters. "
            f"Student: {student.get('num_layers', '?')} layers, {_millions(student.get('num_parameters'))} parameters.",
            "",
        ]
    rows = quantized.get("variants") or []
    if rows:
        latency_sizes = (quantized.get("latency") or {}).get("batch_sizes") or [1]
        header = [
            "Model",
            "Revision",
            metric,
            f"Δ {metric} (pts)",
            "Size MB",
            *[f"Latency b{b} ms" for b in latency_sizes],
            "Device",
        ]
        parts += [
            f"Teacher, fp32 student and every variant, measured by `hfkdq quantize` on {quantized.get('eval_examples', '?')} "
            f"held-out examples (latency: median, sequence length {(quantized.get('latency') or {}).get('seq_len', '?')}; "
            "Δ against the fp32 student on the same device):",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---", "---", *["---:"] * (len(header) - 3), "---"]) + "|",
        ]
        for row in rows:
            name = row["name"]
            revision = MAIN if row.get("role") == "student" else name if name in published else "–"
            points = (row.get("deltas") or {}).get("metric_points")
            size = row.get("size_bytes")
            latency = row.get("latency_ms") or {}
            cells = [
                f"{'fp32 student' if row.get('role') == 'student' else name}",
                f"`{revision}`"
                if revision != "–"
                else ("not published" if row.get("role") == "variant" else "–"),
                _fmt((row.get("metrics") or {}).get(metric)),
                "–"
                if row.get("role") == "student"
                else (f"{points:+.2f}" if isinstance(points, int | float) else "–"),
                _fmt(size / 2**20 if size else None, 1),
                *[_fmt(latency.get(f"batch_{b}"), 1) for b in latency_sizes],
                row.get("device") or "–",
            ]
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    if layout.plot is not None:
        base = (endpoint or _hub_endpoint()).rstrip("/")
        parts += [f"![{metric} vs latency and size]({base}/{repo_id}/resolve/{MAIN}/{PLOT_FILE})", ""]

    distillation = run.get("distillation") or {}
    if distillation:
        parts += ["## Distillation settings", "", "| Setting | Value |", "|---|---|"]
        parts += [f"| `{key}` | {json.dumps(value)} |" for key, value in distillation.items()]
        init = student.get("initialised_from_teacher_layers")
        if init is not None:
            parts.append(f"| student initialised from teacher layers | {json.dumps(init)} |")
        parts.append("")

    parts += ["## Data", ""]
    if btc:
        parts += [
            "Trained and evaluated on the **Broad Twitter Corpus** (as embedded in hfkdq, unchanged), © its authors, "
            "licensed under [CC BY 4.0](https://creativecommons.org/licenses/by/4.0/): Leon Derczynski, Kalina "
            "Bontcheva and Ian Roberts. *Broad Twitter Corpus: A Diverse Named Entity Recognition Resource.* "
            "COLING 2016.",
            "",
            "```bibtex",
            BTC_CITATION,
            "```",
        ]
    elif data:
        described = ", ".join(f"{key}: `{value}`" for key, value in data.items() if value)
        parts.append(
            f"Data as recorded in the run's `results.json`: {described}. Cite the data set and respect its licence "
            "as its authors ask."
        )
    else:
        parts.append("The run's `results.json` does not record the data set; see the model's author for it.")

    parts += [
        "",
        "## How to use",
        "",
        "One line per revision (each revision also carries the tokenizer):",
        "",
        "```python",
        "from transformers import AutoTokenizer",
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")',
    ]
    for revision, backend in published.items():
        import_line, call = _load_code(repo_id, revision, backend, head)
        parts += ["", f"# {'fp32 student' if revision == MAIN else revision}", import_line, call]
    parts += [
        "```",
        "",
        "## Fine-tune it further",
        "",
        "The fp32 student on `main` is a plain `transformers` model: fine-tune it with the `Trainer` like any "
        "checkpoint (pass `ignore_mismatched_sizes=True` and your own `num_labels`/`id2label` for a different "
        "label set), then quantize the result again with `hfkdq quantize`.",
        "",
        "```python",
        f"from transformers import {auto}, Trainer, TrainingArguments",
        f'model = {auto}.from_pretrained("{repo_id}", num_labels=len(labels), ignore_mismatched_sizes=True)',
        'trainer = Trainer(model=model, args=TrainingArguments("out", num_train_epochs=3), train_dataset=train, '
        "processing_class=tokenizer)",
        "trainer.train()",
        "```",
        "",
    ]
    content = f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(parts)
    return str(ModelCard(content))


def _hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


# ----- plan and push ----------------------------------------------------------------------------------
def plan_push(
    path: str | Path,
    repo_id: str,
    max_metric_drop: float | None = None,
    license: str = "apache-2.0",  # noqa: A002 - the card field's name
) -> PushPlan:
    """Everything a push would upload, per revision, with the gate applied; no network call."""
    check_repo_id(repo_id)
    max_metric_drop = check_max_metric_drop(max_metric_drop)
    layout = find_layout(path)
    blocked = gate(layout.variants, layout.quantized_results, max_metric_drop)
    blocked_names = {failure.variant for failure in blocked}
    uploads: list[RevisionUpload] = []
    published: dict[str, str | None] = {}
    head = None
    if layout.student is not None:
        files, excluded = _directory_files(layout.student)
        upload = RevisionUpload(MAIN, "fp32 student", layout.student, dict(files), excluded)
        if layout.run_results is not None:
            upload.files[RUN_RESULTS_FILE] = layout.root / RUN_RESULTS_FILE
        if layout.quantized_results is not None:
            upload.files[QUANTIZED_RESULTS_FILE] = (
                json.dumps(layout.quantized_results, indent=2).encode() + b"\n"
            )
        if layout.plot is not None:
            upload.files[PLOT_FILE] = layout.plot
        uploads.append(upload)
        published[MAIN] = None
        head = _head_of(layout.student)
    for name, directory in layout.variants.items():
        if name in blocked_names:
            continue
        metadata = _read_json(directory / METADATA_FILE) or {}
        files, excluded = _directory_files(directory)
        upload = RevisionUpload(
            name, f"{name} variant ({metadata.get('backend', '?')})", directory, dict(files), excluded
        )
        for json_name in (METADATA_FILE, "verification.json"):
            if json_name in upload.files:
                upload.files[json_name] = _published_json(directory / json_name, repo_id)
        if layout.student is None and layout.plot is not None:
            upload.files[PLOT_FILE] = layout.plot
        uploads.append(upload)
        published[name] = metadata.get("backend")
        head = head or metadata.get("head") or _head_of(directory)
    if not uploads and not blocked:
        raise ValueError(f"{layout.root} has nothing to publish")
    card = build_model_card(repo_id, layout, published, blocked, head or "sequence", license)
    for upload in uploads:
        text = card
        own_readme = upload.source / CARD_FILE if upload.source is not None else None
        if upload.revision != MAIN and own_readme is not None and own_readme.is_file():
            text += (
                f"\n## About the `{upload.revision}` files\n\n" + own_readme.read_text().split("\n", 1)[-1]
            )
        upload.files[CARD_FILE] = text.encode()
    return PushPlan(repo_id, layout.root, uploads, blocked, card)


def _head_of(directory: Path) -> str:
    config = _read_json(directory / "config.json") or {}
    return head_of_architectures(config.get("architectures") or []) or "sequence"


def check_can_push(token: str | None = None) -> str:
    """The token to push with; fails (before any upload) in offline mode or without a token."""
    import huggingface_hub
    from huggingface_hub import constants

    offline_env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true")
    if constants.HF_HUB_OFFLINE or offline_env:
        raise ValueError(
            "offline mode is on (HF_HUB_OFFLINE=1), so nothing can be pushed to the Hub: unset HF_HUB_OFFLINE "
            "(or use --dry_run to see what would be uploaded)"
        )
    token = token or huggingface_hub.get_token()
    if not token:
        raise ValueError(
            "no Hugging Face token: log in with `huggingface-cli login` (or `hf auth login`), set HF_TOKEN, "
            "or pass --token (a token with write access)"
        )
    return token


def _remote_files(api: Any, repo_id: str, revision: str) -> dict[str, Any]:
    """Path -> `RepoFile` (its git blob id, and sha256 when it is stored in LFS/xet) of one revision."""
    from huggingface_hub.hf_api import RepoFile

    entries = api.list_repo_tree(repo_id, revision=revision, recursive=True)
    return {entry.path: entry for entry in entries if isinstance(entry, RepoFile)}


def _as_upload(content: Path | bytes) -> str | bytes:
    return content if isinstance(content, bytes) else str(content)


def _same_content(content: Path | bytes, remote: Any) -> bool:
    """Whether the remote file already holds `content`: same git blob id, or same LFS sha256.

    Compared here, not left to the client: huggingface_hub 0.x re-sends unchanged regular files (the
    Hub then records no change for them, but the bytes still travel).
    """
    if remote is None:
        return False
    data = content if isinstance(content, bytes) else content.read_bytes()
    lfs = getattr(remote, "lfs", None)
    sha256 = getattr(lfs, "sha256", None) or (lfs.get("sha256") if isinstance(lfs, dict) else None)
    if sha256:
        return hashlib.sha256(data).hexdigest() == sha256
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == getattr(remote, "blob_id", None)


def _network_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a failed HTTP exchange raises: huggingface_hub 0.x uses requests, 1.x httpx, 2.x httpx2."""
    from huggingface_hub.errors import HfHubHTTPError

    errors: list[type[BaseException]] = [HfHubHTTPError, OSError]
    for module, name in (("requests", "RequestException"), ("httpx", "HTTPError"), ("httpx2", "HTTPError")):
        try:
            errors.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def push_to_hub(
    path: str | Path,
    repo_id: str,
    *,
    max_metric_drop: float | None = None,
    private: bool = False,
    token: str | None = None,
    dry_run: bool = False,
    license: str = "apache-2.0",  # noqa: A002 - the card field's name
    commit_message: str = "Upload with hfkdq push",
    out=None,
) -> PushResult:
    """Publish a run (student on main, each passing variant on its branch); print the file lists first.

    Returns the commit of every revision and the variants the gate kept back (`PushResult.blocked`);
    raises ValueError for bad input (before any upload) and `HubPushError` when the Hub exchange fails.
    """
    out = out or sys.stdout
    plan = plan_push(path, repo_id, max_metric_drop, license)
    if not dry_run:
        token = check_can_push(token)
    print(plan.describe(), file=out, flush=True)
    for failure in plan.blocked:
        print(f"hfkdq push: {failure.describe()}", file=sys.stderr, flush=True)
    if dry_run:
        print("Dry run: nothing was uploaded.", file=out)
        return PushResult(repo_id, {}, plan.blocked, plan)

    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    api = HfApi(token=token)
    commits: dict[str, str] = {}
    revision = MAIN
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        for upload in plan.uploads:
            revision = upload.revision
            if revision != MAIN:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            remote = _remote_files(api, repo_id, revision)
            changed = [
                name
                for name in sorted(upload.files)
                if not _same_content(upload.files[name], remote.get(name))
            ]
            operations: list[Any] = [
                CommitOperationAdd(path_in_repo=name, path_or_fileobj=_as_upload(upload.files[name]))
                for name in changed
            ]
            operations += [
                CommitOperationDelete(path_in_repo=name)
                for name in sorted(set(remote) - set(upload.files) - {".gitattributes"})
            ]
            if not operations:
                commits[revision] = api.model_info(repo_id, revision=revision).sha
                print(f"{repo_id}@{revision}: unchanged ({commits[revision]})", file=out, flush=True)
                continue
            info = api.create_commit(repo_id, operations, commit_message=commit_message, revision=revision)
            commits[revision] = info.oid
            print(
                f"{repo_id}@{revision}: {len(operations)} file(s) changed, {info.commit_url}",
                file=out,
                flush=True,
            )
    except _network_errors() as error:
        done = ", ".join(commits) or "none"
        raise HubPushError(
            f"pushing revision {revision!r} of {repo_id} to {_hub_endpoint()} failed: {type(error).__name__}: "
            f"{error}. Revisions completed: {done}; revision {revision!r} was not changed (a commit is all or "
            "nothing). Run the same command again to finish: files already on the Hub are not sent again."
        ) from error
    return PushResult(repo_id, commits, plan.blocked, plan)


# ----- CLI -------------------------------------------------------------------------------------------
PUSH_EPILOG = """\
Layout: the fp32 student on main, each quantized variant on a branch named after its method
(onnx-int8, bnb-8bit, ...) of the same repo, one model card on every revision.

Examples:
  # a recipe's output: student/ + quantized/<method>/ ; variants losing > 1 F1 point stay local (exit 3)
  hfkdq push outputs/ner-btc-minilm --repo_id you/minilm-btc-student --max_metric_drop 1.0

  # see the exact file list per revision without uploading anything
  hfkdq push outputs/ner-btc-minilm --repo_id you/minilm-btc-student --dry_run

  # a bare student directory, to a private repo, with an explicit token
  hfkdq push outputs/glue-sst2/student --repo_id your-org/sst2-student --private --token "$HF_TOKEN"
"""


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    """`hfkdq push` arguments; the epilog with examples is set here so the parser shows it verbatim."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = PUSH_EPILOG
    parser.add_argument(
        "run_dir",
        help="A run's output directory (student/, quantized/), a saved student, or one quantized variant.",
    )
    parser.add_argument("--repo_id", required=True, help="Hub repo, namespace/name (created when missing).")
    parser.add_argument(
        "--max_metric_drop",
        type=float,
        default=None,
        help="Do not push a variant that lost more than this many metric points (x100) vs the fp32 student, "
        "as measured in quantized/results.json; exit 3 when one was kept back.",
    )
    parser.add_argument(
        "--private", action="store_true", help="Create the repo private (an existing repo is kept as is)."
    )
    parser.add_argument(
        "--token", default=None, help="Hub token with write access (default: HF_TOKEN or the login)."
    )
    parser.add_argument(
        "--license", default="apache-2.0", help="Licence of the published model, for the card."
    )
    parser.add_argument(
        "--dry_run", action="store_true", help="Print what would be uploaded; upload nothing."
    )


def run_push(args: argparse.Namespace) -> int:
    """`hfkdq push`: 0 when everything was pushed, 3 when the gate kept a variant back, 1 on an error."""
    from hfkdq.cli import EXIT_ERROR, EXIT_METRIC_DROP, EXIT_OK

    try:
        result = push_to_hub(
            args.run_dir,
            args.repo_id,
            max_metric_drop=args.max_metric_drop,
            private=args.private,
            token=args.token,
            dry_run=args.dry_run,
            license=args.license,
        )
    except HubPushError as error:
        print(f"hfkdq push: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    if result.blocked:
        banner = "!" * 78
        lines = "\n".join(failure.describe() for failure in result.blocked)
        print(f"\n{banner}\nQUALITY GATE: not pushed:\n{lines}\n{banner}", file=sys.stderr)
        return EXIT_METRIC_DROP
    return EXIT_OK
