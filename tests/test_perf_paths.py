"""The fast paths of issue 17 give the same answers as the plain ones: the run-wide worker pool (order, reuse, a
bounded queue, crashed workers), numpy-only detector validation, the allocator tuning and the sharded engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gendetect.detectors import create_detector
from gendetect.features.base import FeatureExtractor
from gendetect.features.extract import CRASH_ERROR, WorkerPool, iter_features

PARENT = os.getpid()


class _MeanExtractor(FeatureExtractor):
    """Deterministic 4-d features; a worker process (never the parent) dies on images 13 px wide."""

    dim = 4

    def __init__(self, die_on_width: int = 13) -> None:
        self.die_on_width = die_on_width

    def get_config(self) -> dict:
        return {"name": "test-mean", "params": {"die_on_width": self.die_on_width}}

    def extract_one(self, image: Image.Image) -> np.ndarray:
        if image.width == self.die_on_width and os.getpid() != PARENT:
            os._exit(3)  # a segfaulting decoder, as the pool sees it
        a = np.asarray(image, dtype=np.float32)
        return np.array([a.mean(), a.std(), image.width, os.getpid() != PARENT], dtype=np.float32)


def _images(folder: Path, widths: list[int]) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i, w in enumerate(widths):
        p = folder / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (16, w, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def test_pool_matches_one_process_in_order(tmp_path: Path) -> None:
    files = _images(tmp_path, [20 + i for i in range(23)])
    ext = _MeanExtractor()
    one = list(iter_features(files, ext, jobs=1))
    two = list(iter_features(iter(files), ext, jobs=2))  # a generator of sources streams too
    assert [i.path for i in two] == files
    for a, b in zip(one, two):
        assert a.ok and b.ok
        np.testing.assert_array_equal(a.features[:3], b.features[:3])
        assert a.info.sha256 == b.info.sha256
    assert all(i.features[3] == 1 for i in two) and all(i.features[3] == 0 for i in one)


def test_open_pool_is_reused_by_every_call(tmp_path: Path) -> None:
    files = _images(tmp_path, [20, 21, 22, 23])
    ext = _MeanExtractor()
    with WorkerPool(ext, 2) as pool:
        executor = pool._executor
        for _ in range(3):
            assert all(i.ok for i in iter_features(files, ext, jobs=2))
        assert pool._executor is executor and pool.restarts == 0
    assert pool._executor is None and WorkerPool.active(ext) is None


def test_pool_reads_ahead_a_bounded_number_of_sources(tmp_path: Path) -> None:
    files = _images(tmp_path, [20] * 3)
    taken = []

    def sources():
        for i in range(10_000):
            taken.append(i)
            yield files[i % 3]

    ext = _MeanExtractor()
    with WorkerPool(ext, 2, chunk_size=2, in_flight=2) as pool:
        it = iter_features(sources(), ext, jobs=2, pool=pool)
        for _ in range(5):
            next(it)
        it.close()
    # in flight: 2 workers x 2 tasks x 2 items, plus the chunk being formed
    assert len(taken) <= 5 + 2 * 2 * 2 + 2


def test_crashed_worker_items_are_retried_then_get_an_error_row(tmp_path: Path) -> None:
    widths = [20, 21, 13, 22, 23, 24, 25, 26, 27, 28, 29]
    files = _images(tmp_path, widths)
    ext = _MeanExtractor(die_on_width=13)
    with WorkerPool(ext, 2, chunk_size=2) as pool:
        items = list(iter_features(files, ext, jobs=2))
        assert pool.restarts >= 2  # the crash, then the retry of the culprit alone
        again = list(iter_features(files[:2], ext, jobs=2))  # the pool works after recovering
    assert [i.path for i in items] == files
    assert [i.ok for i in items] == [w != 13 for w in widths]
    assert items[2].error == CRASH_ERROR
    assert [i.features[2] for i in items if i.ok] == [w for w in widths if w != 13]
    assert all(i.ok for i in again)


def test_numpy_validation_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = (X[:, 0] > 0).astype(int)
    det = create_detector("logistic").fit(X, y)
    np.testing.assert_array_equal(det.decision_function(X), det.decision_function(X.tolist()))  # sklearn path
    X32 = X.astype(np.float32)
    np.testing.assert_array_equal(det.decision_function(X32), det.decision_function(X32.tolist()))
    with pytest.raises(ValueError, match="X has 4 features, but LogisticDetector is expecting 5"):
        det.decision_function(X[:, :4])
    with pytest.raises(ValueError, match="NaN"):
        det.decision_function(np.full((1, 5), np.nan))
    with pytest.raises(ValueError, match="Reshape your data"):
        det.decision_function(X[0])
    assert repr(create_detector("logistic", C=0.5)) == "LogisticDetector(C=0.5)"
    assert repr(create_detector("logistic")) == "LogisticDetector()"


def test_allocator_tuning_is_guarded() -> None:
    code = "from gendetect.features.extract import tune_allocator; print(tune_allocator())"
    env = {**os.environ, "GENDETECT_MALLOC_TUNE": "0"}
    off = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert off.stdout.strip() == "False"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    glibc = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    assert on.stdout.strip() == str(glibc)
