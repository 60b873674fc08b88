"""`hfkdq quantize`: every variant of a saved student, evaluated on the task's held-out split with the
training metric code, reported (results.json, REPORT.md, pareto.png), and gated by --max_metric_drop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TEST_DATA, requires_onnx, tiny_bert_config
from transformers import BertForSequenceClassification, BertForTokenClassification

import hfkdq.quantization.workflow as workflow
from hfkdq.commands import quantize as quantize_command
from hfkdq.commands.errors import EXIT_ERROR, EXIT_METRIC_DROP, EXIT_OK
from hfkdq.commands.main import build_parser, main
from hfkdq.quantization import load_variant
from hfkdq.tasks.evaluation_data import load_evaluation_data

BTC_LABELS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
FAST = [
    "--max_eval_samples",
    "24",
    "--latency_repeats",
    "1",
    "--latency_warmup",
    "0",
    "--latency_seq_len",
    "16",
]


def save_student(directory: Path, tokenizer, labels: list[str] | None, head: str = "token") -> Path:
    torch.manual_seed(0)
    config = tiny_bert_config(num_labels=len(labels) if labels else 1, num_layers=2, hidden_size=64)
    if labels:
        config.id2label = dict(enumerate(labels))
        config.label2id = {name: index for index, name in enumerate(labels)}
    model_class = BertForTokenClassification if head == "token" else BertForSequenceClassification
    model_class(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def ner_student(tmp_path_factory, minilm_tokenizer) -> Path:
    return save_student(tmp_path_factory.mktemp("cli") / "ner", minilm_tokenizer, BTC_LABELS)


@requires_onnx
def test_ner_student_is_quantized_evaluated_and_reported(ner_student, tmp_path, capsys):
    out = tmp_path / "quantized"
    status = main(
        [
            "quantize",
            str(ner_student),
            "--methods",
            "onnx-int8,onnx-int8-static,torch-int8",
            "--output_dir",
            str(out),
        ]
        + ["--calibration_samples", "8", *FAST]
    )
    assert status == EXIT_OK
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith("| Variant | f1 |")  # seqeval entity F1, the NER metric
    results = json.loads((out / "results.json").read_text())
    assert [row["name"] for row in results["variants"]] == [
        "fp32",
        "onnx-int8",
        "onnx-int8-static",
        "torch-int8",
    ]
    assert results["eval_examples"] == 24 and results["main_metric"] == "f1"
    assert {"precision", "recall", "f1", "accuracy"} <= set(results["variants"][1]["metrics"])
    assert (out / "REPORT.md").read_text().count("\n| ") == 1 + 4
    assert (out / "pareto.png").stat().st_size > 0
    for method in ("onnx-int8", "onnx-int8-static", "torch-int8"):
        assert (out / method / "verification.json").is_file()
    static = json.loads((out / "onnx-int8-static" / "hfkdq_quantization.json").read_text())
    assert static["options"]["calibration_samples"] == 8  # drawn from the BTC training split


def test_max_metric_drop_fails_the_run_loudly(ner_student, tmp_path, monkeypatch, capsys):
    """A variant whose head is broken (predicts O everywhere) loses all entity F1."""

    def broken_torch_int8(directory, device=None):
        model = load_variant(directory, device)
        if Path(directory).name == "torch-int8":
            model.classifier.weight.data.zero_()
            model.classifier.bias.data.copy_(torch.tensor([10.0] + [0.0] * (len(BTC_LABELS) - 1)))
        return model

    monkeypatch.setattr(workflow, "load_variant", broken_torch_int8)
    status = main(
        ["quantize", str(ner_student), "--methods", "torch-int8", "--output_dir", str(tmp_path / "q")]
        + ["--max_metric_drop", "0.5", *FAST]
    )
    captured = capsys.readouterr()
    fp32_f1 = json.loads((tmp_path / "q" / "results.json").read_text())["variants"][0]["metrics"]["f1"]
    assert fp32_f1 * 100 > 0.5, "precondition: the (seeded) random student finds some entities"
    assert status == EXIT_METRIC_DROP
    assert "METRIC DROP ABOVE THE ALLOWED MAXIMUM" in captured.err
    assert (
        "variant 'torch-int8' lost" in captured.err
        and "f1 points vs the fp32 student (allowed: 0.50)" in captured.err
    )
    assert "FAILED" in (tmp_path / "q" / "REPORT.md").read_text()


@requires_onnx
def test_stsb_regression_from_a_csv_file(minilm_tokenizer, tmp_path, capsys):
    student = save_student(tmp_path / "stsb", minilm_tokenizer, None, head="sequence")
    csv = str(TEST_DATA / "glue_stsb_tiny.csv")
    status = main(
        ["quantize", str(student), "--task", "stsb", "--eval_file", csv, "--train_file", csv]
        + ["--methods", "onnx-int8-static,torch-int8", "--output_dir", str(tmp_path / "q"), *FAST]
    )
    assert status == EXIT_OK
    results = json.loads((tmp_path / "q" / "results.json").read_text())
    assert results["main_metric"] == "combined_score"
    assert results["variants"][1]["verification"]["prediction_agreement"] is None  # regression: no argmax
    assert "| torch-int8 |" in capsys.readouterr().out


def test_sequence_model_needs_a_task(minilm_tokenizer, tmp_path, capsys):
    student = save_student(tmp_path / "seq", minilm_tokenizer, ["negative", "positive"], head="sequence")
    status = main(["quantize", str(student), "--methods", "torch-int8", "--output_dir", str(tmp_path / "q")])
    assert status == EXIT_ERROR
    assert "name its GLUE task (--task sst2" in capsys.readouterr().err


@requires_onnx
def test_static_quantization_without_training_data_is_a_clear_error(minilm_tokenizer, tmp_path, capsys):
    student = save_student(tmp_path / "stsb", minilm_tokenizer, None, head="sequence")
    csv = str(TEST_DATA / "glue_stsb_tiny.csv")
    status = main(
        ["quantize", str(student), "--task", "stsb", "--eval_file", csv]
        + ["--methods", "onnx-int8-static", "--output_dir", str(tmp_path / "q"), *FAST]
    )
    assert status == EXIT_ERROR
    assert "no calibration data was given" in capsys.readouterr().err
    assert not (tmp_path / "q" / "onnx-int8-static").exists()


def test_unknown_method_and_bad_model_dir_exit_with_a_message(ner_student, tmp_path, capsys):
    assert (
        main(["quantize", str(ner_student), "--methods", "int2", "--output_dir", str(tmp_path)]) == EXIT_ERROR
    )
    assert "Valid methods: onnx-fp32, onnx-int8" in capsys.readouterr().err
    missing = [
        "quantize",
        str(tmp_path / "missing"),
        "--methods",
        "torch-int8",
        "--output_dir",
        str(tmp_path / "q"),
    ]
    assert main(missing) == EXIT_ERROR
    assert "is not a directory" in capsys.readouterr().err


def test_ner_labels_are_mapped_to_the_model_order(ner_student, minilm_tokenizer, tmp_path):
    """A student whose id2label lists the BTC tags in another order is scored with its own ids."""
    shuffled = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    other = save_student(tmp_path / "shuffled", minilm_tokenizer, shuffled)
    aligned = load_evaluation_data(ner_student, max_eval_samples=24, include_train=False)
    remapped = load_evaluation_data(other, max_eval_samples=24, include_train=False)
    for row_a, row_b in zip(aligned.eval_dataset["labels"], remapped.eval_dataset["labels"], strict=True):
        names_a = [BTC_LABELS[i] for i in row_a if i != -100]
        names_b = [shuffled[i] for i in row_b if i != -100]
        assert names_a == names_b


def test_ner_data_with_tags_the_model_lacks_is_refused(minilm_tokenizer, tmp_path):
    student = save_student(tmp_path / "per-only", minilm_tokenizer, ["O", "B-PER", "I-PER"])
    with pytest.raises(ValueError, match="tags the model has no label for"):
        load_evaluation_data(student, max_eval_samples=8, include_train=False)


def test_each_verb_is_run_by_its_own_module():
    parser = build_parser()
    args = parser.parse_args(["quantize", "model", "--output_dir", "out"])
    assert args.methods == "onnx-int8,bnb-8bit,bnb-4bit,torch-int8"
    assert args.run is quantize_command.run
    with pytest.raises(SystemExit):
        parser.parse_args([])


def _quantize(student: Path, methods: str, out: Path, *extra: str) -> int:
    return main(["quantize", str(student), "--methods", methods, "--output_dir", str(out), *FAST, *extra])


@requires_onnx
def test_quantizing_into_an_existing_directory_adds_to_the_report(ner_student, tmp_path, capsys):
    out = tmp_path / "quantized"
    assert _quantize(ner_student, "onnx-int8", out) == EXIT_OK
    first = json.loads((out / "results.json").read_text())

    assert _quantize(ner_student, "torch-int8", out) == EXIT_OK

    results = json.loads((out / "results.json").read_text())
    assert [row["name"] for row in results["variants"]] == ["fp32", "torch-int8", "onnx-int8"]
    kept = results["variants"][2]
    assert kept["earlier_run"] is True
    assert kept["metrics"] == first["variants"][1]["metrics"]
    report = (out / "REPORT.md").read_text()
    assert "onnx-int8 (earlier run)" in report and "torch-int8" in report


def test_a_rerun_replaces_its_own_variant_and_clears_scratch_left_by_a_killed_run(
    ner_student, tmp_path, caplog
):
    out = tmp_path / "quantized"
    assert _quantize(ner_student, "torch-int8", out) == EXIT_OK
    stale_dir = out / ".torch-int8.partial-dead1234"
    stale_dir.mkdir()
    (stale_dir / "model.safetensors").write_bytes(b"half written")
    stale_file = out / ".results.json.partial-dead5678"
    stale_file.write_text("{")

    assert _quantize(ner_student, "torch-int8", out, "--overwrite") == EXIT_OK

    results = json.loads((out / "results.json").read_text())
    assert [row["name"] for row in results["variants"]] == ["fp32", "torch-int8"]
    assert not stale_dir.exists() and not stale_file.exists()
    assert caplog.text.count("left by an interrupted run") == 2


def test_variants_of_another_student_are_never_carried_over(ner_student, minilm_tokenizer, tmp_path):
    out = tmp_path / "quantized"
    (out / "onnx-int8").mkdir(parents=True)
    (out / "results.json").write_text(
        json.dumps(
            {
                "model_dir": str(tmp_path / "another-student"),
                "variants": [{"name": "onnx-int8", "role": "variant", "metrics": {"f1": 0.9}}],
            }
        )
    )
    assert workflow.earlier_variants(out, ner_student, ["torch-int8"]) == []
    same = json.loads((out / "results.json").read_text())
    same["model_dir"] = str(ner_student)
    (out / "results.json").write_text(json.dumps(same))
    assert [row["name"] for row in workflow.earlier_variants(out, ner_student, ["torch-int8"])] == [
        "onnx-int8"
    ]
    assert workflow.earlier_variants(out, ner_student, ["onnx-int8"]) == []  # redone in this run
