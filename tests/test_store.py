"""The feature store: cache hits, resume after a killed run with nothing lost or duplicated, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gendetect.cli import main
from gendetect.data.readers import read_records
from gendetect.data.synthetic import make_synthetic_dataset
from gendetect.features import create_extractor
from gendetect.features.featurize import featurize
from gendetect.features.simple import PixelStats
from gendetect.features.store import FeatureStore


class Killed(KeyboardInterrupt):  # like a kill: not an error of one image
    pass


class CountingStats(PixelStats):
    """pixel-stats that counts its calls and can 'die' after ``die_after`` images."""

    def __init__(self, max_side: int = 512) -> None:
        super().__init__(max_side)
        self.calls = 0
        self.die_after: int | None = None

    def extract_one(self, image: Image.Image) -> np.ndarray:
        if self.die_after is not None and self.calls >= self.die_after:
            raise Killed("simulated kill")
        self.calls += 1
        return super().extract_one(image)


CountingStats.name = "pixel-stats"  # same config id as the real one


@pytest.fixture()
def records(tmp_path: Path) -> list:
    root = make_synthetic_dataset(tmp_path / "d", n_per_class=10, size=32, generators=("g",))
    return read_records(root)


def test_second_run_reads_everything_from_the_store(records: list, tmp_path: Path) -> None:
    ext = CountingStats()
    X1, kept1, _ = featurize(records, ext, store=FeatureStore(tmp_path / "s", ext), shard_size=6)
    assert ext.calls == 20 and len(kept1) == 20
    X2, kept2, _ = featurize(records, ext, store=FeatureStore(tmp_path / "s", ext), shard_size=6)
    assert ext.calls == 20  # nothing extracted again
    np.testing.assert_array_equal(X1, X2)
    assert [r.path for r in kept1] == [r.path for r in kept2]


def test_resume_after_a_kill_loses_and_duplicates_nothing(records: list, tmp_path: Path) -> None:
    ext = CountingStats()
    ext.die_after = 13  # killed inside the third shard of 6
    store = FeatureStore(tmp_path / "s", ext)
    with pytest.raises(Killed):
        featurize(records, ext, store=store, shard_size=6)
    assert len(FeatureStore(tmp_path / "s", ext)) == 12  # two complete shards, the partial one not counted
    ext.die_after = None
    X, kept, failed = featurize(records, ext, store=FeatureStore(tmp_path / "s", ext), shard_size=6)
    assert ext.calls == 13 + 8 and len(kept) == 20 and not failed  # only the missing 8 were extracted
    fresh = featurize(records, create_extractor("pixel-stats"))[0]
    np.testing.assert_allclose(X, fresh)
    store = FeatureStore(tmp_path / "s", ext)
    shas = []
    for shard in store.shards():
        import pyarrow.parquet as pq

        shas += pq.read_table(store._path(shard, "parquet")).column("sha256").to_pylist()
    assert len(shas) == len(set(shas)) == 20


def test_half_written_shard_is_ignored(records: list, tmp_path: Path) -> None:
    ext = create_extractor("pixel-stats")
    store = FeatureStore(tmp_path / "s", ext)
    np.save(store._path(0, "npy"), np.zeros((3, ext.dim), np.float32))  # no done.json: a killed write
    assert store.shards() == [] and len(store) == 0
    featurize(records, ext, store=store, shard_size=100)
    assert store.shards() == [1] and len(FeatureStore(tmp_path / "s", ext)) == 20


def test_store_is_keyed_by_extractor_config(records: list, tmp_path: Path) -> None:
    a = FeatureStore(tmp_path / "s", create_extractor("pixel-stats", max_side=64))
    b = FeatureStore(tmp_path / "s", create_extractor("pixel-stats", max_side=32))
    assert a.dir != b.dir
    assert json.loads((a.dir / "extractor.json").read_text())["params"] == {"max_side": 64}


def test_cli_features_extract_then_train_from_the_store(records: list, tmp_path: Path) -> None:
    data = Path(records[0].path).parents[2]
    runner = CliRunner()
    args = ["features", "extract", "--data", str(data), "--extractor", "pixel-stats", "--store", str(tmp_path / "s")]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "20 images stored (20 new)" in first.stderr
    again = runner.invoke(main, args)
    assert "(0 new)" in again.stderr
    trained = runner.invoke(
        main,
        [
            "train",
            "--data",
            str(data),
            "--extractor",
            "pixel-stats",
            "--folds",
            "2",
            "--store",
            str(tmp_path / "s"),
            "-o",
            str(tmp_path / "m"),
        ],
    )
    assert trained.exit_code == 0, trained.output


def test_refresh_indexes_only_shards_written_since(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gendetect.features.store as store_module

    ext = create_extractor("pixel-stats")
    writer, reader = FeatureStore(tmp_path, ext), FeatureStore(tmp_path, ext)
    X = np.arange(6 * ext.dim, dtype=np.float32).reshape(6, ext.dim)
    writer.add(["a", "b", "c"], X[:3])
    assert len(reader) == 3
    reads = []
    real_read = store_module.pq.read_table
    monkeypatch.setattr(store_module.pq, "read_table", lambda path, **kw: reads.append(path) or real_read(path, **kw))
    writer.add(["c", "d", "e", "f"], X[2:])  # another process adds a shard ("c" is already stored)
    assert "d" not in reader
    reader.refresh()
    assert len(reader) == 6 and [Path(p).name for p in reads] == ["shard-00001.parquet"]  # the old shard is not re-read
    np.testing.assert_array_equal(reader.get(["f", "a"])[0], X[[5, 0]])
