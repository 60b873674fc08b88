"""What a result was measured with: the hfkdq version, the git commit of its checkout, library versions
and the machine. Every results.json hfkdq writes (a recipe's run, a quantization, a variant's metadata)
and every benchmark records it through `capture_environment`, so a number can be traced to the code
and libraries that produced it."""

from __future__ import annotations

import contextlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = (
    "hfkdq",
    "torch",
    "transformers",
    "accelerate",
    "datasets",
    "evaluate",
    "huggingface_hub",
    "optimum",
    "optimum-onnx",
    "onnxruntime",
    "bitsandbytes",
)
"""The packages whose version changes what hfkdq measures; those not installed are left out."""

CHECKOUT = Path(__file__).resolve().parent.parent
"""Where the hfkdq package sits: a git checkout for an editable install, site-packages otherwise."""


def library_versions(packages: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Installed version of each package (missing ones are absent, not errors)."""
    versions = {}
    for package in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def git_commit(directory: str | Path = CHECKOUT) -> dict[str, Any] | None:
    """{"commit", "dirty"} of the git checkout holding `directory`; None outside one (or without git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def capture_environment() -> dict[str, Any]:
    """hfkdq version, git commit (None outside a checkout), library versions, Python, CPU, device, threads."""
    from hfkdq import __version__

    git = git_commit()
    environment: dict[str, Any] = {
        "hfkdq": __version__,
        "git_commit": git["commit"] if git else None,
        "git_dirty": git["dirty"] if git else None,
        "versions": library_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
    }
    with contextlib.suppress(ImportError):
        import torch

        environment["device"] = (
            torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({environment['cpu']})"
        )
        environment["torch_threads"] = torch.get_num_threads()
    return environment
