"""A model directory is checked file by file; each broken shape is named with its file."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, TEST_DATA

from hfkdq.model_checks import NotASavedModelError, check_model_source


@pytest.fixture
def saved(tmp_path, tiny_teacher_dir):
    copy = tmp_path / "teacher"
    shutil.copytree(tiny_teacher_dir, copy)
    return copy


def test_a_complete_directory_and_a_hub_id_pass(saved):
    check_model_source(str(saved), "teacher")
    check_model_source("sentence-transformers/all-MiniLM-L6-v2", "teacher")


def _truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: shutil.rmtree(d), "does not exist"),
        (lambda d: [p.unlink() for p in list(d.iterdir())], "the directory is empty"),
        (lambda d: (d / "config.json").unlink(), "missing config.json"),
        (lambda d: (d / "config.json").write_text("{not json"), "corrupt config.json"),
        (lambda d: (d / "config.json").write_text(json.dumps({"hidden_size": 4})), "no model_type"),
        (lambda d: (d / "model.safetensors").unlink(), "missing weights"),
        (lambda d: (d / "model.safetensors").write_bytes(b""), r"corrupt model.safetensors \(empty file\)"),
        (lambda d: _truncate(d / "model.safetensors", 4), "corrupt model.safetensors .truncated"),
        (lambda d: _truncate(d / "model.safetensors", -100), "corrupt model.safetensors .truncated"),
        (
            lambda d: [
                (d / n).unlink()
                for n in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")
                if (d / n).exists()
            ],
            "missing tokenizer files",
        ),
    ],
    ids=[
        "missing",
        "empty",
        "no-config",
        "bad-config",
        "config-not-a-model",
        "no-weights",
        "empty-weights",
        "truncated-header",
        "truncated-tensors",
        "no-tokenizer",
    ],
)
def test_each_broken_directory_is_named_with_its_file(saved, breakage, message):
    breakage(saved)
    with pytest.raises(NotASavedModelError, match=message) as caught:
        check_model_source(str(saved), "teacher")
    assert str(saved) in str(caught.value)


def test_a_file_instead_of_a_directory(saved):
    with pytest.raises(NotASavedModelError, match="is a file"):
        check_model_source(str(saved / "config.json"), "teacher")


def test_the_recipe_prints_one_line_and_exits_1_and_the_traceback_only_with_verbose(tmp_path):
    command = [
        sys.executable,
        str(REPO_ROOT / "recipes" / "distill_bert_ner.py"),
        str(TEST_DATA / "ner_recipe_tiny.yaml"),
        "--teacher_name_or_path",
        str(tmp_path / "nowhere"),
        "--output_dir",
        str(tmp_path / "run"),
    ]
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 1
    assert "teacher" in quiet.stderr and "does not exist" in quiet.stderr
    assert "Traceback" not in quiet.stderr
    loud = subprocess.run([*command, "--verbose"], capture_output=True, text=True, timeout=300)
    assert loud.returncode != 0 and "Traceback" in loud.stderr
