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


@pytest.fixture(scope="session")
def stats_model():
    """A small pipeline on the cheap pixel-stats extractor, fitted on noise: scan mechanics, not accuracy."""
    import numpy as np

    from gendetect.detectors import create_detector
    from gendetect.features import create_extractor
    from gendetect.pipeline import DetectionPipeline

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 12))
    y = np.r_[np.zeros(20), np.ones(20)].astype(int)
    X[y == 1, 6:] += 1.0
    return DetectionPipeline(
        create_extractor("pixel-stats"), create_detector("logistic").fit(X, y), 0.5, {"name": "test-stats"}
    )
