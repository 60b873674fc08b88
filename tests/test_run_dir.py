"""One run per output directory: a live lock refuses a second run, a stale one is taken over, finished runs stay."""

import json
import subprocess
import sys

import pytest

from hfkdq.run_dir import LOCK_FILE, OutputDirectoryInUseError, check_not_finished, run_lock


def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path):
    with run_lock(tmp_path) as lock:
        assert lock.is_file()
        with pytest.raises(OutputDirectoryInUseError, match=r"another run \(pid \d+"):
            with run_lock(tmp_path):
                pass
    assert not (tmp_path / LOCK_FILE).exists(), "the lock is released at the end"


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(finished.stdout)
    import socket

    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": dead_pid, "host": socket.gethostname()}))
    with run_lock(tmp_path) as lock:
        assert json.loads(lock.read_text())["pid"] != dead_pid


def test_a_finished_directory_needs_overwrite(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(FileExistsError, match="--overwrite_output_dir"):
        check_not_finished(tmp_path, overwrite=False)
    check_not_finished(tmp_path, overwrite=True)
    with pytest.raises(FileExistsError, match="--overwrite_output_dir"):
        check_not_finished(tmp_path, overwrite=False, resuming=True)
    with pytest.raises(FileExistsError, match="nothing to resume"):
        check_not_finished(tmp_path, overwrite=True, resuming=True)


def test_an_output_dir_that_is_a_file_is_named(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(FileExistsError, match=r"--output_dir .*out is a file, not a directory"):
        check_not_finished(tmp_path / "out", overwrite=True)


def _saved_student(directory, tokenizer=None):
    from conftest import tiny_bert_config
    from transformers import BertForTokenClassification

    labels = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]  # BTC's, the default data
    config = tiny_bert_config(num_labels=len(labels), num_layers=1, hidden_size=32)
    config.id2label = dict(enumerate(labels))
    config.label2id = {name: index for index, name in enumerate(labels)}
    BertForTokenClassification(config).save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    return directory


def test_hfkdq_quantize_into_a_directory_in_use_is_one_line_and_exit_1(tmp_path, capsys, minilm_tokenizer):
    from hfkdq.commands.errors import EXIT_ERROR
    from hfkdq.commands.main import main

    student = _saved_student(tmp_path / "student", minilm_tokenizer)
    with run_lock(tmp_path / "quantized"):
        status = main(
            ["quantize", str(student), "--methods", "torch-int8", "--output_dir", str(tmp_path / "quantized")]
        )
    err = capsys.readouterr().err
    assert status == EXIT_ERROR
    assert "another run (pid" in err and "Traceback" not in err


def test_a_model_without_tokenizer_files_is_named_before_any_work(tmp_path, capsys):
    from hfkdq.commands.errors import EXIT_ERROR
    from hfkdq.commands.main import main

    student = _saved_student(tmp_path / "student")
    capsys.readouterr()  # transformers 5 reports the save's progress on stderr
    status = main(
        ["quantize", str(student), "--methods", "torch-int8", "--output_dir", str(tmp_path / "quantized")]
    )
    err = capsys.readouterr().err
    assert status == EXIT_ERROR
    assert "missing tokenizer files" in err and err.count("\n") == 1
    assert not (tmp_path / "quantized").exists()
