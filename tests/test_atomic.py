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


def test_saved_models_get_the_permissions_of_any_new_file(tmp_path) -> None:
    """safetensors writes its file 0600; a saved model's weights are as readable as its config.json (0o666 less
    the umask), and user_mode reads the umask without changing it."""
    import os

    import numpy as np

    from gendetect import DetectionPipeline, create_detector, create_extractor
    from gendetect.atomic import user_mode

    old = os.umask(0o027)
    try:
        ext = create_extractor("npr", crop=32, n_crops=1)
        X = np.random.default_rng(0).normal(size=(20, ext.dim))
        det = create_detector("logistic").fit(X, np.arange(20) % 2)
        out = DetectionPipeline(ext, det, 0.5).save(tmp_path / "m")
        det.save(tmp_path / "d")
        for f in (out / "model.safetensors", tmp_path / "d" / "model.safetensors"):
            assert f.stat().st_mode & 0o777 == 0o640 == (out / "config.json").stat().st_mode & 0o777
        private = tmp_path / "p"
        private.write_text("x")
        private.chmod(0o600)
        assert user_mode(private).stat().st_mode & 0o777 == 0o640
        assert os.umask(0o027) == 0o027  # unchanged by user_mode
    finally:
        os.umask(old)
