"""`hfkdq.environment`: what every results.json records about the code and libraries behind its numbers."""

from __future__ import annotations

import subprocess
from importlib import metadata

import hfkdq
from hfkdq.environment import capture_environment, git_commit, library_versions


def test_the_environment_names_the_hfkdq_version_the_commit_and_the_libraries():
    environment = capture_environment()
    assert environment["hfkdq"] == hfkdq.__version__
    assert environment["versions"]["torch"] == metadata.version("torch")
    assert environment["versions"]["transformers"] == metadata.version("transformers")
    assert environment["torch_threads"] >= 1


def test_the_commit_is_the_checkouts_head(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("1")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert git_commit(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "f").write_text("2")
    assert git_commit(tmp_path) == {"commit": head, "dirty": True}


def test_outside_a_checkout_there_is_no_commit(tmp_path):
    assert git_commit(tmp_path) is None


def test_a_package_that_is_not_installed_is_left_out():
    assert library_versions(("torch", "no-such-package-hfkdq")) == {"torch": metadata.version("torch")}
