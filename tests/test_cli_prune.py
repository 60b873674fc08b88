"""`hfkdq prune`: a student or a run's student pruned, recovered from its teacher, saved as a stock model;
everything it cannot prune refused in one line before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_bert_config
from transformers import AutoModelForTokenClassification, BertForTokenClassification

from hfkdq.commands.main import main
from hfkdq.resources import btc_files


def _first_sentences(source: str, target: Path, count: int) -> Path:
    sentences, current = [], []
    for line in Path(source).read_text(encoding="utf-8").splitlines():
        if line.strip():
            current.append(line)
        elif current:
            sentences.append(current)
            current = []
        if len(sentences) == count:
            break
    target.write_text("\n\n".join("\n".join(sentence) for sentence in sentences) + "\n", encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("prune-data")
    files = btc_files()
    return {
        "train": _first_sentences(files["train"], root / "train.conll", 24),
        "dev": _first_sentences(files["validation"], root / "dev.conll", 8),
    }


LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def _save(directory: Path, tokenizer, layers: int, seed: int) -> Path:
    torch.manual_seed(seed)
    config = tiny_bert_config(num_labels=len(LABELS), num_layers=layers, hidden_size=32)
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {name: i for i, name in enumerate(LABELS)}
    BertForTokenClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, minilm_tokenizer):
    """A recipe's output directory, as far as pruning reads it: student/, teacher/, results.json."""
    run = tmp_path_factory.mktemp("run")
    _save(run / "student", minilm_tokenizer, layers=2, seed=1)
    _save(run / "teacher", minilm_tokenizer, layers=3, seed=2)
    results = {"teacher": {"name_or_path": str(run / "teacher")}, "distillation": {"temperature": 2.0}}
    (run / "results.json").write_text(json.dumps(results))
    return run


def _prune(*argv) -> int:
    return main(["prune", *map(str, argv)])


def test_a_run_s_student_is_pruned_recovered_from_its_teacher_and_loads_as_a_stock_model(
    run_dir, data, tmp_path, capsys
):
    output = tmp_path / "pruned"
    status = _prune(
        run_dir,
        "--ffn_keep",
        "0.5",
        "--output_dir",
        output,
        "--train_file",
        data["train"],
        "--eval_file",
        data["dev"],
        "--recovery_epochs",
        "1",
        "--importance_samples",
        "8",
    )
    assert status == 0
    model = AutoModelForTokenClassification.from_pretrained(output)
    assert model.config.intermediate_size == 32  # 64 x 0.5
    record = json.loads((output / "pruning.json").read_text())
    assert record["recovery"]["teacher"] == str(run_dir / "teacher")
    assert record["recovery"]["temperature"] == 2.0, "the run's distillation settings are reused"
    assert {"metric_before", "metric_pruned", "metric_recovered"} <= set(record)
    assert (output / "tokenizer.json").is_file() or (output / "vocab.txt").is_file()
    assert "FFN width 64 -> 32" in capsys.readouterr().out


def test_a_bare_student_without_a_teacher_is_pruned_only(run_dir, data, tmp_path, capsys):
    output = tmp_path / "pruned"
    assert (
        _prune(
            run_dir / "student",
            "--ffn_keep",
            "0.25",
            "--output_dir",
            output,
            "--train_file",
            data["train"],
            "--eval_file",
            data["dev"],
        )
        == 0
    )
    assert json.loads((output / "pruning.json").read_text())["recovery"] is None
    assert "(not recovered)" in capsys.readouterr().out
    assert AutoModelForTokenClassification.from_pretrained(output).config.intermediate_size == 16


def _refused(capsys, argv, message: str, output: Path) -> None:
    assert _prune(*argv) == 1
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1, error
    assert not output.exists()


@pytest.mark.parametrize("keep", ["0", "1.5", "nan", "-0.5", "inf", "half"])
def test_a_keep_share_outside_zero_to_one_is_refused(run_dir, tmp_path, capsys, keep):
    output = tmp_path / "out"
    _refused(capsys, [run_dir, "--ffn_keep", keep, "--output_dir", output], "--ffn_keep must be", output)


def test_a_keep_share_that_leaves_no_neuron_is_refused(run_dir, tmp_path, capsys):
    output = tmp_path / "out"
    _refused(capsys, [run_dir, "--ffn_keep", "0.001", "--output_dir", output], "rounds to none", output)


def test_an_onnx_file_or_a_quantized_variant_is_refused(run_dir, tmp_path, capsys):
    output = tmp_path / "out"
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"not really")
    _refused(capsys, [onnx_file, "--ffn_keep", "0.5", "--output_dir", output], "is an ONNX model", output)
    variant = tmp_path / "torch-int8"
    variant.mkdir()
    (variant / "hfkdq_quantization.json").write_text(json.dumps({"method": "torch-int8"}))
    _refused(
        capsys,
        [variant, "--ffn_keep", "0.5", "--output_dir", output],
        "is a quantized variant (torch-int8)",
        output,
    )


def test_recovery_without_a_teacher_and_an_existing_output_are_refused(run_dir, data, tmp_path, capsys):
    output = tmp_path / "out"
    argv = [run_dir / "student", "--ffn_keep", "0.5", "--output_dir", output, "--train_file", data["train"]]
    _refused(capsys, [*argv, "--recovery_epochs", "1"], "needs a teacher", output)
    output.mkdir()
    (output / "keep.txt").write_text("a finished model")
    assert _prune(*argv) == 1
    assert (output / "keep.txt").read_text() == "a finished model"
