"""gendetect.atomic: files appear whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from gendetect.atomic import atomic_path, atomic_write, temp_path


def test_atomic_path_renames_into_place_on_success(tmp_path: Path) -> None:
    dest = tmp_path / "shard.parquet"
    with atomic_path(dest) as tmp:
        assert tmp == temp_path(dest) and tmp.parent == dest.parent and tmp.name.startswith(".")
        tmp.write_bytes(b"new")
        assert not dest.exists()  # nothing visible until the block ends
    assert dest.read_bytes() == b"new" and not tmp.exists()


def test_atomic_path_keeps_the_old_file_and_removes_the_temp_on_error(tmp_path: Path) -> None:
    dest = atomic_write(tmp_path / "done.json", "old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert dest.read_text() == "old" and list(tmp_path.iterdir()) == [dest]
