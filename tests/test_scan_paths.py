"""One scan path (issue 18 item 2): the CLI's library call, the server's uploads and jobs and the sharded engine give
the same rows for the same files; the detector scores batches, not single rows; engine options travel as one value."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gendetect import DetectionPipeline, load_model
from gendetect.data.synthetic import synthetic_image
from gendetect.errors import GendetectError
from gendetect.pipeline import ScanInputs, ScanRow, scan
from gendetect.scale import ENGINES, EngineOptions, ScanRun, scan_paths

# what a route may show differently: where the row came from (a file name or an upload), how it was served
_ROUTE_KEYS = {"path", "path_bytes", "filename", "version", "cached", "http_status", "error"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Textured images the default model scores, two unusual modes, a flat one (no signal) and a broken file."""
    root = tmp_path_factory.mktemp("same-rows")
    synthetic_image("real", 160, seed=1).save(root / "a-real.png")
    synthetic_image("fake", 160, seed=2).save(root / "b-fake.jpg", quality=90)
    synthetic_image("real", 160, seed=3).convert("CMYK").save(root / "c-cmyk.jpg", quality=95)
    gray = np.asarray(synthetic_image("fake", 160, seed=4).convert("L"), np.uint16) * 257
    Image.fromarray(gray).save(root / "d-gray16.png")  # 16-bit grayscale ("I;16")
    Image.new("RGB", (160, 160), "white").save(root / "e-flat.png")
    (root / "f-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


@pytest.fixture(scope="module")
def model() -> DetectionPipeline:
    return load_model()


def _core(row: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    """The row's values on ``keys`` (a column a row lacks reads as None: shard files hold every column)."""
    return {k: row.get(k) for k in sorted(keys - _ROUTE_KEYS)}


def _error_text(row: dict[str, Any]) -> str | None:
    """The error without the name of the input it names (a path, or ``<bytes>`` for an upload)."""
    error = row.get("error")
    return None if error is None else str(error).split(": ", 1)[-1]


def _assert_same(a: dict[str, Any], b: dict[str, Any], name: str) -> None:
    keys = set(a) | set(b)
    core_a, core_b = _core(a, keys), _core(b, keys)
    pa, pb = core_a.pop("p_fake"), core_b.pop("p_fake")
    assert core_a == core_b, name
    assert (pa is None) == (pb is None) and (pa is None or pa == pytest.approx(pb, abs=1e-12)), name
    assert _error_text(a) == _error_text(b), name


def test_cli_server_and_sharded_engine_give_the_same_rows(
    folder: Path, model: DetectionPipeline, tmp_path: Path
) -> None:
    pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
    from gendetect.server.app import ServerSettings, UploadScorer
    from gendetect.server.uploads import Upload

    library = {Path(r.path).name: r.to_dict() for r in scan_paths([folder], model)}  # what `gendetect scan` runs
    sharded_run = scan_paths([folder], model, engine=EngineOptions(shard_size=2), shards_dir=tmp_path / "shards")
    sharded = {Path(r.path).name: r.to_dict() for r in sharded_run}
    assert sharded_run.sharded is not None and len(list((tmp_path / "shards" / "shards").glob("*.done.json"))) == 3
    names = sorted(p.name for p in folder.iterdir())
    scorer = UploadScorer(model, ServerSettings(db_url="sqlite://", use_store=False))
    uploads = [Upload("files", n, bytearray((folder / n).read_bytes())) for n in names]
    served = {item["filename"]: item for item in scorer.score_uploads(uploads)}

    assert sorted(library) == sorted(sharded) == sorted(served) == names
    for name in names:
        _assert_same(library[name], sharded[name], name)
        _assert_same(library[name], served[name], name)
    assert library["c-cmyk.jpg"]["mode"] == "CMYK" and library["c-cmyk.jpg"]["status"] == "ok"
    assert library["d-gray16.png"]["mode"].startswith("I") and library["d-gray16.png"]["status"] == "ok"
    assert library["a-real.png"]["p_fake"] is not None and library["b-fake.jpg"]["p_fake"] is not None
    assert library["e-flat.png"]["verdict"] == "uncertain" and library["e-flat.png"]["reason"].startswith("no signal")
    broken = library["f-broken.png"]
    assert broken["status"] == "error" and broken["p_fake"] is None and "not an image" in broken["error"]
    assert served["f-broken.png"]["http_status"] == 422 and served["a-real.png"]["cached"] is False
    assert served["a-real.png"]["version"] == model.version


def test_a_server_job_gives_the_rows_of_a_scan(folder: Path, model: DetectionPipeline, tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
    from gendetect.server.jobs import JobManager, plan_inputs
    from gendetect.server.store import ResultStore

    store = ResultStore("sqlite://")
    manager = JobManager(store, model, folder)
    job_id = manager.submit(plan_inputs([".", "missing.png"], folder))["id"]
    for _ in range(600):
        if manager.summary(job_id)["status"] in ("finished", "failed"):
            break
        time.sleep(0.05)
    assert manager.summary(job_id)["status"] == "finished"
    rows = list(manager.rows(job_id))
    library = list(scan_paths([folder, folder / "missing.png"], model))
    assert [r["path"] for r in rows] == [Path(r.path).name for r in library[:-1]] + ["missing.png"]
    for job_row, row in zip(rows, library):
        _assert_same(job_row, row.to_dict(), job_row["path"])
    assert rows[-1]["status"] == "error" and rows[-1]["model"] == model.name  # problem rows are stamped too


def _spy_batches(monkeypatch: pytest.MonkeyPatch, pipeline: DetectionPipeline) -> list[int]:
    sizes: list[int] = []
    real = pipeline.predict_proba_features

    def spy(X: np.ndarray) -> np.ndarray:
        sizes.append(len(X))
        return real(X)

    monkeypatch.setattr(pipeline, "predict_proba_features", spy)
    return sizes


def _pngs(tmp_path: Path, n: int) -> list[str]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        p = tmp_path / f"{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(p)
        out.append(str(p))
    return out


def test_the_detector_scores_batches_not_single_rows(
    stats_model: DetectionPipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _pngs(tmp_path, 10)
    (tmp_path / "broken.png").write_bytes(b"nope")
    one_by_one = [r.p_fake for r in scan(files, stats_model, evidence=False, batch_size=1)]
    sizes = _spy_batches(monkeypatch, stats_model)
    rows = list(scan([*files[:5], str(tmp_path / "broken.png"), *files[5:]], stats_model, evidence=False))
    assert sizes == [10]  # one call for the ten readable files; the broken one keeps its error row
    assert [r.status for r in rows].count("error") == 1 and len(rows) == 11
    assert [r.p_fake for r in rows if r.status == "ok"] == pytest.approx(one_by_one, abs=1e-12)
    sizes.clear()
    assert len(list(scan(files, stats_model, evidence=False, batch_size=4))) == 10 and sizes == [4, 4, 2]


def test_server_uploads_are_scored_as_one_batch(
    stats_model: DetectionPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("fastapi", reason="the 'serve' extra is not installed")
    from gendetect.server.app import ServerSettings, UploadScorer
    from gendetect.server.uploads import Upload

    def png(seed: int) -> bytearray:
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(buf, "PNG")
        return bytearray(buf.getvalue())

    sizes = _spy_batches(monkeypatch, stats_model)
    scorer = UploadScorer(stats_model, ServerSettings(db_url="sqlite://", evidence=False))
    items = scorer.score_uploads([Upload("files", f"{i}.png", png(i)) for i in range(3)] + [Upload("files", "e", b"")])
    assert sizes == [3] and [i["status"] for i in items] == ["ok", "ok", "ok", "error"]
    assert items[3]["http_status"] == 400 and items[3]["filename"] == "e"


def test_scan_run_stamps_problems_and_gives_them_after_the_scored_rows(
    stats_model: DetectionPipeline, tmp_path: Path
) -> None:
    files = _pngs(tmp_path, 3)
    (tmp_path / "empty").mkdir()
    run = scan_paths([tmp_path / "nope.png", *files, tmp_path / "empty"], stats_model, threshold=0.25, evidence=False)
    assert isinstance(run, ScanRun) and len(run) == 5 and run.files == files
    rows = list(run)
    assert [r.path for r in rows[:3]] == files and [r.status for r in rows[3:]] == ["error", "error"]
    assert all(r.model == "test-stats" and r.threshold == 0.25 for r in rows)
    with pytest.raises(GendetectError, match="already taken"):
        list(run.rows())  # a streamed scan is read once
    shown = scan_paths(ScanInputs(files, [ScanRow.problem("x", "refused")], names=["a", "b", "c"]), stats_model)
    assert [r.path for r in shown] == ["a", "b", "c", "x"]
    with pytest.raises(GendetectError, match="shards_dir"):
        scan_paths(files, stats_model, engine="local")


def test_a_sharded_scan_resumes_and_reads_its_rows_back_as_scan_rows(
    stats_model: DetectionPipeline, tmp_path: Path
) -> None:
    files = _pngs(tmp_path, 5)
    first = scan_paths(
        files, stats_model, engine=EngineOptions(shard_size=2), shards_dir=tmp_path / "s", evidence=False
    )
    again = scan_paths(files, stats_model, engine="local", shards_dir=tmp_path / "s", evidence=False)
    assert [r.to_dict() for r in first] == [r.to_dict() for r in again]
    assert all(isinstance(r, ScanRow) for r in again) and len(list(again.rows())) == 5  # readable again


def test_scan_row_round_trips_through_a_dict() -> None:
    row = ScanRow("a.png", p_fake=0.3, verdict="real", findings=[{"kind": "x"}], extra={"tiles": 4, "z": None})
    assert ScanRow.from_dict(row.to_dict()) == row
    assert list(ScanRow.from_dict(row.to_dict()).to_dict()) == list(row.to_dict())


def test_engine_options_are_one_value_with_the_old_keywords_still_accepted() -> None:
    assert EngineOptions.resolve(None) == EngineOptions()
    assert EngineOptions.resolve(EngineOptions(shard_size=8), engine="ray") == EngineOptions("ray", shard_size=8)
    assert EngineOptions.resolve(EngineOptions(shard_size=8), shard_size=None).shard_size == 8
    with pytest.raises(TypeError, match="jobs"):
        EngineOptions.resolve(None, jobs=2)
    with pytest.raises(GendetectError, match="Unknown engine 'dask'"):
        EngineOptions(engine="dask")
    assert list(ENGINES) == ["local", "ray"] and callable(ENGINES.get("local"))


def test_a_registered_engine_runs_the_shards(tmp_path: Path) -> None:
    from gendetect.scale.runner import ShardTask, run_local, run_shards

    class Double(ShardTask):
        def plan(self) -> dict[str, Any]:
            return {"task": "double"}

        def run(self, shard: Any, out_dir: Path) -> list[dict[str, Any]]:
            return [{"x": x, "y": 2 * x} for x in shard.items]

    used: list[int] = []

    @ENGINES.register("test-counting")
    def counting(task: Any, todo: Any, shards: Any, store: Any, options: EngineOptions) -> None:
        used.extend(s.index for s in todo)
        run_local(task, todo, shards, store, options)

    try:
        rows = run_shards(Double(), [1, 2, 3], tmp_path / "run", EngineOptions("test-counting", shard_size=2))
    finally:
        ENGINES._entries.pop("test-counting", None)
    assert [r["y"] for r in rows] == [2, 4, 6] and used == [0, 1]
