"""The model card every revision of a pushed repo shows: YAML metadata with `model-index`, then the
revisions, the teacher-vs-student and variant tables, the distillation settings, the data and how to
load each revision. Every figure comes from the run's results files; nothing is re-measured here."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hfkdq.hub.layout import MAIN, RunLayout, check_repo_id, hub_endpoint
from hfkdq.layout import PLOT_FILE
from hfkdq.quality_gate import GateFailure

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
        parts.append(f"| – | {failure.variant}: **not published** ({failure.problem}) | – |")

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
        base = (endpoint or hub_endpoint()).rstrip("/")
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
