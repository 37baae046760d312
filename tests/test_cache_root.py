"""One reader of GENDETECT_CACHE: every default cache location follows hub.cache_root()."""

from __future__ import annotations

from pathlib import Path

import pytest

from gendetect.features.store import default_store_root
from gendetect.hub import cache_root, url_cache_root


def test_every_default_follows_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GENDETECT_CACHE", "~/gd")  # expanded, wherever it is read
    root = tmp_path / "gd"
    assert cache_root() == root
    assert default_store_root() == root / "features"
    assert url_cache_root() == root / "url"
    assert cache_root(tmp_path / "x") == tmp_path / "x"  # an explicit folder wins


def test_unset_means_the_home_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GENDETECT_CACHE", raising=False)
    assert cache_root() == tmp_path / ".cache" / "gendetect"
    assert default_store_root() == tmp_path / ".cache" / "gendetect" / "features"


def test_server_results_live_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sqlalchemy", reason="the 'serve' extra is not installed")
    from gendetect.server.store import default_db_url

    monkeypatch.setenv("GENDETECT_CACHE", str(tmp_path / "c"))
    assert default_db_url() == f"sqlite:///{tmp_path / 'c' / 'results.sqlite'}"
