"""`hfkdq quantize` and `hfkdq evaluate` handed a run directory (or its student, or one of its variants)
use the task, data files, split and teacher its results.json records; a bare model keeps the BTC default.

The student here was "distilled" on another corpus: its labels (PER, MISC) are not BTC's, so scoring it
on the embedded BTC default fails on the label mismatch, as it did before runs were read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_bert_config
from transformers import BertForTokenClassification

from hfkdq.commands.errors import EXIT_ERROR, EXIT_OK
from hfkdq.commands.main import main
from hfkdq.run_record import find_run_record, model_dir_of

LABELS = ["O", "B-PER", "I-PER", "B-MISC", "I-MISC"]
FAST = ["--latency_repeats", "1", "--latency_warmup", "0", "--latency_seq_len", "16"]
SENTENCES = [
    [("Ada", "B-PER"), ("Lovelace", "I-PER"), ("wrote", "O"), ("notes", "O")],
    [("the", "O"), ("Python", "B-MISC"), ("language", "O")],
    [("Alan", "B-PER"), ("likes", "O"), ("Esperanto", "B-MISC")],
]


def write_conll(path: Path, copies: int) -> Path:
    blocks = ["\n".join(f"{word}\t{tag}" for word, tag in sentence) for sentence in SENTENCES * copies]
    path.write_text("\n\n".join(blocks) + "\n")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, minilm_tokenizer) -> Path:
    """A recipe's run layout: student/ (labels PER/MISC), results.json naming its CoNLL files."""
    root = tmp_path_factory.mktemp("other-corpus")
    data = root / "data"
    data.mkdir()
    files = {
        "train": write_conll(data / "train.conll", 4),
        "validation": write_conll(data / "dev.conll", 2),
        "test": write_conll(data / "test.conll", 1),
    }
    run = root / "run"
    torch.manual_seed(0)
    config = tiny_bert_config(num_labels=len(LABELS), num_layers=2, hidden_size=64)
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {name: index for index, name in enumerate(LABELS)}
    BertForTokenClassification(config).save_pretrained(run / "student")
    minilm_tokenizer.save_pretrained(run / "student")
    results = {
        "task": {"head": "token", "labels": LABELS, "main_metric": "f1"},
        "teacher": {"name_or_path": str(root / "no-such-teacher")},
        "student": {"tokenizer": "teacher's"},
        "data": {"files": {split: str(path) for split, path in files.items()}},
        "quantization": {"eval_split": "test"},
    }
    (run / "results.json").write_text(json.dumps(results))
    return run


@pytest.mark.parametrize("given", ["run", "run/student"])
def test_quantize_takes_the_task_data_and_split_the_run_recorded(run_dir, tmp_path, capsys, given):
    model = run_dir if given == "run" else run_dir / "student"
    out = tmp_path / "quantized"
    status = main(["quantize", str(model), "--methods", "torch-int8", "--output_dir", str(out), *FAST])
    captured = capsys.readouterr()
    assert status == EXIT_OK, captured.err
    assert f"Using what {run_dir / 'results.json'} records: task ner, split test" in captured.out
    results = json.loads((out / "results.json").read_text())
    assert results["eval_examples"] == len(SENTENCES)  # the recorded test file, not BTC
    assert results["model_dir"] == str(run_dir / "student")


def test_evaluate_takes_them_too_for_the_student_and_its_variants(run_dir, tmp_path, capsys):
    out = tmp_path / "quantized"
    assert main(["quantize", str(run_dir), "--methods", "torch-int8", "--output_dir", str(out), *FAST]) == 0
    capsys.readouterr()
    record = tmp_path / "metrics.json"
    assert main(["evaluate", str(run_dir), "--output", str(record)]) == EXIT_OK
    evaluated = json.loads(record.read_text())
    assert (evaluated["task"], evaluated["eval_split"], evaluated["eval_examples"]) == ("ner", "test", 3)
    # A variant written into the run's own quantized/ belongs to the run too.
    variant = run_dir / "quantized" / "torch-int8"
    assert (
        main(
            ["quantize", str(run_dir), "--methods", "torch-int8", "--output_dir", str(variant.parent), *FAST]
        )
        == 0
    )
    assert find_run_record(variant).run_dir == run_dir


def test_data_named_on_the_command_line_wins_over_the_record(run_dir, tmp_path, capsys):
    """--data_dir (here the embedded-BTC default's job) is the user's choice: BTC's LOC/ORG tags are then refused."""
    status = main(
        [
            "quantize",
            str(run_dir),
            "--methods",
            "torch-int8",
            "--output_dir",
            str(tmp_path / "q"),
            "--task",
            "ner",
        ]
    )
    assert status == EXIT_ERROR
    assert "tags the model has no label for" in capsys.readouterr().err


def test_a_recorded_file_that_moved_is_named(run_dir, tmp_path, capsys):
    moved = tmp_path / "moved-run"
    moved.mkdir()
    (moved / "student").symlink_to(run_dir / "student")
    results = json.loads((run_dir / "results.json").read_text())
    results["data"]["files"]["test"] = str(tmp_path / "gone.conll")
    (moved / "results.json").write_text(json.dumps(results))
    status = main(["evaluate", str(moved)])
    assert status == EXIT_ERROR
    assert f"records the test file {tmp_path / 'gone.conll'}, which is not there" in capsys.readouterr().err


def test_a_bare_model_is_no_run():
    assert find_run_record(Path("/nonexistent/model")) is None
    assert model_dir_of("/nonexistent/model") == Path("/nonexistent/model")
