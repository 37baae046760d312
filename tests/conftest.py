"""Shared fixtures. Every test runs offline with an isolated cache.

pytest-socket blocks network sockets for every test (``--disable-socket --allow-unix-socket`` in pyproject.toml;
Unix sockets stay allowed for process pools), and ``HF_HUB_OFFLINE=1`` stops hub clients from retrying.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("GENDETECT_CACHE", str(tmp_path_factory.mktemp("cache")))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("shared_data") and not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED_DATA} (absent in this checkout)")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED_DATA} (absent in this checkout)")
    return SHARED_DATA
