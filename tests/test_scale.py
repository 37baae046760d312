"""Sharded scanning: the local and Ray engines give the same rows; killed runs and killed workers lose nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from gendetect.cli import main
from gendetect.data.synthetic import synthetic_image
from gendetect.errors import GendetectError
from gendetect.scale import Shard, ShardTask, engines, plan_shards, run_scan, run_shards


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("scale")
    out = []
    for i in range(22):
        path = root / f"{i:03d}.png"
        synthetic_image("real" if i % 2 else "fake", 64, seed=i).save(path)
        out.append(str(path))
    (root / "broken.png").write_bytes(b"not a png")
    out.append(str(root / "broken.png"))
    return out


def _same(a: list[dict], b: list[dict]) -> bool:
    if [r["path"] for r in a] != [r["path"] for r in b] or [r["status"] for r in a] != [r["status"] for r in b]:
        return False
    return all(x["p_fake"] == y["p_fake"] or abs(x["p_fake"] - y["p_fake"]) < 1e-9 for x, y in zip(a, b))


def _kill_after(monkeypatch: pytest.MonkeyPatch, n_shards: int):  # noqa: ANN202
    """Make the run 'die' (KeyboardInterrupt, like a kill) after committing ``n_shards``; returns the real scorer."""
    real_score = engines.score_shard
    calls = {"n": 0}

    def dying(shard, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if calls["n"] == n_shards:
            raise KeyboardInterrupt("killed")
        calls["n"] += 1
        return real_score(shard, *args, **kwargs)

    monkeypatch.setattr(engines, "score_shard", dying)
    return real_score


def test_plan_is_deterministic() -> None:
    shards = plan_shards([f"{i}" for i in range(10)], 4)
    assert [len(s.items) for s in shards] == [4, 4, 2] and [s.index for s in shards] == [0, 1, 2]
    with pytest.raises(GendetectError, match="shard size"):
        plan_shards(["a"], 0)
    grouped = plan_shards(["a1", "a2", "a3", "b1", "c1", "c2"], 2, group_by=lambda s: s[0])
    assert [s.items for s in grouped] == [("a1", "a2"), ("a3",), ("b1",), ("c1", "c2")]
    assert [s.index for s in grouped] == [0, 1, 2, 3]


def test_local_engine_resumes_after_a_kill(files: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = run_scan(files, None, tmp_path / "fresh", shard_size=5)
    assert len(fresh) == len(files) and fresh[-1]["status"] == "error"
    real_score = _kill_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run_scan(files, None, tmp_path / "run", shard_size=5)
    assert sorted(p.name for p in (tmp_path / "run" / "shards").glob("*.done.json")) == [
        "shard-00000.done.json",
        "shard-00001.done.json",
    ]
    monkeypatch.setattr(engines, "score_shard", real_score)
    resumed = run_scan(files, None, tmp_path / "run", shard_size=5)
    assert _same(resumed, fresh)
    # fewer files: their committed rows are kept, nothing is rescanned (issue 16 item 8: incremental resume)
    assert _same(run_scan(files[:7], None, tmp_path / "run", shard_size=5), fresh[:7])
    with pytest.raises(GendetectError, match="another run"):  # another threshold is another run
        run_scan(files, None, tmp_path / "run", shard_size=5, threshold=0.3)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed")
    marker = tmp_path_factory.mktemp("fault") / "killed-once"
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {engines.FAULT_ENV: f"2:{marker}", "HF_HUB_OFFLINE": "1"}},
    )
    yield marker
    ray.shutdown()


@pytest.mark.enable_socket
def test_ray_engine_equals_local_even_when_a_worker_is_killed(
    files: list[str], tmp_path: Path, ray_cluster: Path
) -> None:
    local = run_scan(files, None, tmp_path / "local", shard_size=4)
    on_ray = run_scan(files, None, tmp_path / "ray", engine="ray", shard_size=4)
    assert ray_cluster.exists()  # the worker scoring shard 2 was killed once, and the shard retried
    assert _same(on_ray, local)
    done = [json.loads(p.read_text()) for p in sorted((tmp_path / "ray" / "shards").glob("*.done.json"))]
    assert sum(d["rows"] for d in done) == len(files)  # nothing lost or duplicated


@pytest.mark.enable_socket
def test_a_run_started_locally_finishes_on_ray(
    files: list[str], tmp_path: Path, ray_cluster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_score = _kill_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run_scan(files, None, tmp_path / "mixed", shard_size=4)
    monkeypatch.setattr(engines, "score_shard", real_score)
    finished = run_scan(files, None, tmp_path / "mixed", engine="ray", shard_size=4)
    assert _same(finished, run_scan(files, None, tmp_path / "local", shard_size=4))


def test_cli_sharded_scan(files: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    folder = str(Path(files[0]).parent)
    result = CliRunner().invoke(main, ["scan", folder, "--engine", "local", "--shard-size", "7", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).num_rows == len(files)
    assert len(list((tmp_path / "out.parquet.shards" / "shards").glob("*.done.json"))) == 4
    again = CliRunner().invoke(main, ["scan", folder, "--engine", "local", "--shard-size", "7", "-o", str(out)])
    assert again.exit_code == 0 and pq.read_table(out).num_rows == len(files)
    missing_out = CliRunner().invoke(main, ["scan", folder, "--engine", "ray"])
    assert missing_out.exit_code == 2 and "needs -o" in missing_out.output


def _extract(files: list[str], root: Path, engine: str) -> tuple:  # noqa: ANN001
    from gendetect.data.readers import read_records
    from gendetect.features import create_extractor
    from gendetect.features.store import FeatureStore
    from gendetect.scale.features import extract_to_store

    records = read_records(Path(files[0]).parent, probe=True, hash=True)
    ext = create_extractor("pixel-stats", max_side=32)
    store = FeatureStore(root, ext)
    rows = extract_to_store(records, store, ext, engine=engine, shard_size=4)
    shas = [r["sha256"] for r in rows]
    return rows, store.get(shas), store


@pytest.mark.enable_socket
def test_features_extract_on_ray_equals_local(files: list[str], tmp_path: Path, ray_cluster: Path) -> None:
    import numpy as np

    local_rows, (X_local, found_local), _ = _extract(files, tmp_path / "local", "local")
    ray_rows, (X_ray, found_ray), store = _extract(files, tmp_path / "ray", "ray")
    assert [r["path"] for r in ray_rows] == [r["path"] for r in local_rows]
    assert [r["status"] for r in ray_rows] == [r["status"] for r in local_rows]
    assert sum(r["status"] == "error" for r in ray_rows) == 1  # the broken file is a row, not a crash
    assert (found_ray == found_local).all() and found_ray.sum() == len(files) - 1
    np.testing.assert_allclose(X_ray[found_ray], X_local[found_local], rtol=0, atol=1e-6)
    assert len(store) == len(files) - 1  # two actors wrote to one store: no row duplicated or lost
    assert sum(len(keys) for keys, _ in store.iter_shards()) == len(files) - 1
    again_rows, _, again = _extract(files, tmp_path / "ray", "local")  # resumes on the other engine: nothing to do
    assert len(again) == len(store) and [r["path"] for r in again_rows] == [r["path"] for r in ray_rows]


@pytest.mark.enable_socket
def test_data_generate_on_ray_equals_local(tmp_path: Path, ray_cluster: Path) -> None:
    pytest.importorskip("diffusers", reason="the 'diffusion' extra is not installed")
    import numpy as np
    from PIL import Image

    from gendetect.generation import generate_dataset
    from gendetect.generation.generators import get_generator
    from gendetect.runs import GenerateRun
    from gendetect.scale.options import EngineOptions
    from tests.diffusers_dummies import save_tiny_sd_pipeline

    gen = get_generator(f"diffusers:{save_tiny_sd_pipeline(tmp_path / 'tiny-sd')}", steps=2)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"a photo of thing {i}\n" for i in range(6)))
    runs = {
        engine: generate_dataset(
            GenerateRun(captions=prompts, generators=[gen], per_caption=1),
            tmp_path / engine,
            EngineOptions(engine=engine, shard_size=2),
        )
        for engine in ("local", "ray")
    }
    local, on_ray = ([(Path(r.path).name, r.extra["seed"]) for r in runs[e].records] for e in ("local", "ray"))
    assert len(local) == 6 and on_ray == local  # the same rows: same files, same seeds
    assert all(r.status == "ok" for r in runs["ray"].records)
    for a, b in zip(runs["local"].records, runs["ray"].records):
        # same pixels up to float rounding: torch's CPU kernels round differently with another thread count
        # (a Ray actor runs one thread), which can move a pixel by a level or two
        pa, pb = (np.asarray(Image.open(r.path), np.int16) for r in (a, b))
        assert np.abs(pa - pb).max() <= 3 and np.abs(pa - pb).mean() < 0.05


class _Echo(ShardTask):
    def plan(self) -> dict:
        return {"task": "echo"}

    def run(self, shard: Shard, out_dir: Path) -> list[dict]:
        # the error key appears only on failing rows: the committed table must keep it anyway
        return [{"x": x} if x % 3 else {"x": x, "error": f"bad {x}"} for x in shard.items]


def test_runner_keeps_every_column_and_refuses_other_items(tmp_path: Path) -> None:
    rows = run_shards(_Echo(), [1, 2, 3, 4, 5, 6], tmp_path / "run", shard_size=3)
    assert [r["error"] for r in rows] == [None, None, "bad 3", None, None, "bad 6"]
    with pytest.raises(GendetectError, match="another run"):  # same length, same first item, other items
        run_shards(_Echo(), [1, 2, 3, 4, 5, 7], tmp_path / "run", shard_size=3)
