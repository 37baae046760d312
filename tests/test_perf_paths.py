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


# -- the sharded engine ----------------------------------------------------------------------------------------
def _synthetic(folder: Path, names: list[str], seed0: int = 0) -> list[str]:
    from gendetect.data.synthetic import synthetic_image

    for k, name in enumerate(names):
        synthetic_image("real" if k % 2 else "fake", 64, seed=seed0 + k).save(folder / name)
    return sorted(str(p) for p in folder.glob("*.png"))


def _count_scanned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from gendetect.scale import engines

    seen: list[str] = []
    real = engines.score_shard

    def counting(shard, *args, **kwargs):
        seen.extend(shard.items)
        return real(shard, *args, **kwargs)

    monkeypatch.setattr(engines, "score_shard", counting)
    return seen


def test_resume_scans_only_new_and_modified_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gendetect.scale import run_scan

    data = tmp_path / "data"
    data.mkdir()
    first = _synthetic(data, [f"{i:02d}.png" for i in range(0, 20, 2)])  # 00, 02, ... 18
    run = tmp_path / "run"
    seen = _count_scanned(monkeypatch)
    assert len(run_scan(first, None, run, shard_size=3)) == 10 and len(seen) == 10
    committed = sorted(p.name for p in (run / "shards").glob("*.done.json"))

    added = _synthetic(data, ["05.png", "07.png", "99.png"], seed0=50)
    modified = data / "04.png"
    _synthetic(data, ["04.png"], seed0=77)
    os.utime(modified, ns=(modified.stat().st_atime_ns, modified.stat().st_mtime_ns + 10**9))
    (data / "10.png").unlink()
    now = sorted(str(p) for p in data.glob("*.png"))
    seen.clear()
    rows = run_scan(now, None, run, shard_size=3)
    assert sorted(seen) == sorted({str(data / n) for n in ("04.png", "05.png", "07.png", "99.png")})
    assert sorted(r["path"] for r in rows) == now  # one row each, the deleted file gone
    fresh = {r["path"]: r["p_fake"] for r in run_scan(now, None, tmp_path / "fresh", shard_size=3)}
    assert [r["p_fake"] for r in rows] == pytest.approx([fresh[r["path"]] for r in rows], abs=1e-9)
    assert set(committed) <= {p.name for p in (run / "shards").glob("*.done.json")}  # no shard discarded
    assert len(added) == 13

    seen.clear()  # a plain rerun scans nothing
    assert [r["path"] for r in run_scan(now, None, run, shard_size=3)] == [r["path"] for r in rows] and seen == []


def test_a_shard_folder_with_shards_of_an_older_layout_still_reads(tmp_path: Path) -> None:
    """Shards written before a scan's lists became JSON text hold them as Arrow lists; a resumed or incremental run
    mixes them with new shards, and must read both (rows as lists, Parquet as JSON text)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from gendetect.output import JSON_COLUMNS
    from gendetect.scale import run_scan, run_scan_sharded

    data = tmp_path / "data"
    data.mkdir()
    files = _synthetic(data, [f"{i:02d}.png" for i in range(4)])
    rows = run_scan(files, None, tmp_path / "run", shard_size=2)
    assert all(isinstance(r["warnings"], list) and isinstance(r["findings"], list) for r in rows)
    run = run_scan_sharded(files, None, tmp_path / "run", shard_size=2)  # resumes: every shard is committed
    old = run.store.path(run.shards[0].index, "parquet")
    table = pq.read_table(old)
    for name in JSON_COLUMNS:  # the older layout: lists as lists
        i = table.schema.get_field_index(name)
        values = [json.loads(v) for v in table.column(name).to_pylist()]
        table = table.set_column(i, name, pa.array(values, type=pa.list_(pa.string())))
    pq.write_table(table, old)
    assert run_scan(files, None, tmp_path / "run", shard_size=2) == rows
    out = tmp_path / "out.parquet"
    assert run_scan_sharded(files, None, tmp_path / "run", shard_size=2).write_parquet(out) == 4
    written = pq.read_table(out)
    assert written.schema.field("warnings").type == pa.string()
    assert [json.loads(v) for v in written.column("warnings").to_pylist()] == [r["warnings"] for r in rows]


def test_sharded_parquet_is_atomic_and_streams_from_the_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    from gendetect.pipeline import ScanRow
    from gendetect.scale import ShardedRun, run_scan_sharded

    data = tmp_path / "data"
    data.mkdir()
    files = _synthetic(data, [f"{i:02d}.png" for i in range(7)])
    run = run_scan_sharded(files, None, tmp_path / "run", shard_size=3)
    out = tmp_path / "out.parquet"
    extra = [ScanRow("missing.png", status="error", error="no such file or directory").to_dict()]
    assert run.write_parquet(out, extra_rows=extra, metadata={b"k": b"v"}) == 8
    table = pq.read_table(out)
    assert table.column("path").to_pylist() == [*files, "missing.png"]
    assert table.schema.metadata[b"k"] == b"v"
    assert run.value_counts("status") == {"ok": 7}

    real_tables = ShardedRun.tables

    def dying(self):
        yield next(real_tables(self))
        raise KeyboardInterrupt

    monkeypatch.setattr(ShardedRun, "tables", dying)
    with pytest.raises(KeyboardInterrupt):
        run.write_parquet(out)
    assert pq.read_table(out).num_rows == 8  # the old file is intact
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_local_engine_keeps_one_pool_for_every_shard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gendetect.features import extract
    from gendetect.scale import run_scan

    data = tmp_path / "data"
    data.mkdir()
    files = _synthetic(data, [f"{i:02d}.png" for i in range(9)])
    starts = []
    real_start = extract.WorkerPool.start

    def counting(self):
        if self._executor is None:
            starts.append(1)
        return real_start(self)

    monkeypatch.setattr(extract.WorkerPool, "start", counting)
    rows = run_scan(files, None, tmp_path / "run", shard_size=2, jobs=2)  # 5 shards
    assert [r["status"] for r in rows] == ["ok"] * 9
    assert len(starts) == 1


def _file_size(source: str) -> int:
    if source.endswith("021.png"):
        raise RuntimeError("hook failed")
    return os.path.getsize(source)


@pytest.mark.parametrize("jobs", [1, 2])
def test_item_fn_runs_next_to_decoding(tmp_path: Path, jobs: int) -> None:
    files = _images(tmp_path, [20] * 22)
    items = list(iter_features(files, _MeanExtractor(), jobs=jobs, item_fn=_file_size))
    assert [i.extra for i in items[:21]] == [os.path.getsize(f) for f in files[:21]]
    assert isinstance(items[21].extra, RuntimeError) and items[21].ok


def test_large_files_decode_from_the_file_with_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from gendetect import imageio
    from gendetect.errors import ImageLoadError

    rng = np.random.default_rng(1)
    png, jpg = tmp_path / "a.png", tmp_path / "b.jpg"
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(png)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(jpg, quality=90)
    truncated = tmp_path / "c.jpg"
    truncated.write_bytes(jpg.read_bytes()[:300])
    plain = [imageio.load_image_with_info(p) for p in (png, jpg)]
    read_bytes = imageio.read_bytes
    monkeypatch.setattr(imageio, "STREAM_FROM_BYTES", 0)
    monkeypatch.setattr(imageio, "read_bytes", lambda *a, **k: pytest.fail("streamed files are not read whole"))
    for (im, info), p in zip(plain, (png, jpg)):
        im2, info2 = imageio.load_image_with_info(p)
        assert info2 == info and info2.sha256 == hashlib.sha256(read_bytes(p)).hexdigest()
        np.testing.assert_array_equal(np.asarray(im2), np.asarray(im))
    with pytest.raises(ImageLoadError, match="truncated"):
        imageio.load_image_with_info(truncated)


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_cli_sharded_scan_writes_from_the_shards(tmp_path: Path, suffix: str) -> None:
    from click.testing import CliRunner

    from gendetect.cli import main

    data = tmp_path / "data"
    data.mkdir()
    files = _synthetic(data, [f"{i:02d}.png" for i in range(5)])
    out = tmp_path / f"out.{suffix}"
    args = ["scan", str(data), str(tmp_path / "missing.png"), "--engine", "local", "--shard-size", "2", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    if suffix == "parquet":
        import pyarrow.parquet as pq

        paths = pq.read_table(out).column("path").to_pylist()
    else:
        import csv

        paths = [r["path"] for r in csv.DictReader(out.open())]
    assert paths == [*files, str(tmp_path / "missing.png")]
    assert "6 rows: 5 judged (" in result.output and "), 1 error " in result.output


def test_features_extract_keeps_one_pool_for_every_shard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gendetect.data.readers import read_records
    from gendetect.features import create_extractor, extract
    from gendetect.features.store import FeatureStore
    from gendetect.scale.features import extract_to_store

    data = tmp_path / "data"
    data.mkdir()
    _synthetic(data, [f"{i:02d}.png" for i in range(7)])
    starts = []
    real_start = extract.WorkerPool.start

    def counting(self):
        if self._executor is None:
            starts.append(1)
        return real_start(self)

    monkeypatch.setattr(extract.WorkerPool, "start", counting)
    ext = create_extractor("pixel-stats", max_side=32)
    records = read_records(data, probe=True, hash=True)
    rows = extract_to_store(records, FeatureStore(tmp_path / "store", ext), ext, shard_size=2, jobs=2)  # 4 shards
    assert [r["status"] for r in rows] == ["ok"] * 7
    assert len(starts) == 1


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_bytes_like_source_is_read_and_named(tmp_path: Path, jobs: int) -> None:
    """imageio.Source's whole contract: bytes, bytearray and memoryview (which does not pickle) reach the workers."""
    data = Path(_images(tmp_path, [21])[0]).read_bytes()
    items = list(iter_features([data, bytearray(data), memoryview(data)], _MeanExtractor(), jobs=jobs))
    assert [i.path for i in items] == ["<bytes #0>", "<bytes #1>", "<bytes #2>"]
    assert all(i.ok for i in items), [i.error for i in items]
    assert len({i.info.sha256 for i in items}) == 1
    np.testing.assert_array_equal(items[0].features, items[2].features)
