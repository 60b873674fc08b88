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
    check_not_finished(tmp_path, overwrite=False, resuming=True)
