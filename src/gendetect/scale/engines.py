"""Sharded scanning engines: ``local`` (this process) and ``ray`` (Ray Data, one model actor per CPU or GPU).

Both run :func:`score_shard` on the same shards and write through the same :class:`ShardStore`, so their outputs
are identical (same rows, same scores) and a run started on one resumes on the other. On Ray, a worker that dies
mid-shard is restarted and the shard retried; because a shard is only committed when its ``done.json`` lands,
retries never duplicate rows.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gendetect.errors import GendetectError
from gendetect.imageio import DEFAULT_MAX_PIXELS
from gendetect.pipeline import DetectionPipeline, load_model, scan

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")
FAULT_ENV = "GENDETECT_FAULT_KILL_SHARD"  # "INDEX:MARKER_FILE": kill the worker once on that shard (chaos tests)


@dataclass(frozen=True)
class Shard:
    index: int
    files: tuple[str, ...]


def plan_shards(files: Sequence[str], shard_size: int) -> list[Shard]:
    """Fixed slices of ``files`` in the given order; the same input always gives the same shards."""
    if shard_size < 1:
        raise GendetectError(f"shard size must be >= 1, got {shard_size}")
    return [Shard(i // shard_size, tuple(files[i : i + shard_size])) for i in range(0, len(files), shard_size)]


class ShardStore:
    """``<dir>/shard-00042.parquet`` + ``shard-00042.done.json`` per finished shard, plus ``plan.json``."""

    def __init__(self, directory: str | os.PathLike, shards: Sequence[Shard], model_version: str) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        plan = {
            "n_shards": len(shards),
            "n_files": sum(len(s.files) for s in shards),
            "model": model_version,
            "first": shards[0].files[0] if shards else None,
        }
        plan_file = self.dir / "plan.json"
        if plan_file.exists():
            old = json.loads(plan_file.read_text())
            if old != plan:
                raise GendetectError(
                    f"{self.dir} holds shards of another run ({old}); use another output or delete the folder"
                )
        else:
            plan_file.write_text(json.dumps(plan, indent=2))

    def path(self, index: int, ext: str) -> Path:
        return self.dir / f"shard-{index:05d}.{ext}"

    def done(self, index: int) -> bool:
        return self.path(index, "done.json").exists()

    def write(self, index: int, rows: list[dict[str, Any]], seconds: float) -> None:
        table = pa.Table.from_pylist(rows)
        tmp = self.path(index, f"parquet.tmp{os.getpid()}")
        pq.write_table(table, tmp)
        os.replace(tmp, self.path(index, "parquet"))
        done = self.path(index, f"done.tmp{os.getpid()}")
        done.write_text(json.dumps({"rows": len(rows), "seconds": seconds, "pid": os.getpid()}))
        os.replace(done, self.path(index, "done.json"))

    def rows(self, n_shards: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(n_shards):
            if not self.done(i):
                raise GendetectError(f"shard {i} of {self.dir} is not finished")
            out.extend(pq.read_table(self.path(i, "parquet")).to_pylist())
        return out


def _maybe_fault(index: int) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    target, _, marker = spec.partition(":")
    if int(target) == index and marker and not Path(marker).exists():
        Path(marker).write_text("killed once")
        logger.warning("fault injection: killing worker %d on shard %d", os.getpid(), index)
        os._exit(1)


def score_shard(
    shard: Shard,
    pipeline: DetectionPipeline,
    store: ShardStore,
    *,
    max_pixels: int,
    threshold: float | None,
    jobs: int = 1,
) -> int:
    """Scan one shard and commit it; returns its row count."""
    t0 = time.perf_counter()
    _maybe_fault(shard.index)
    rows = [
        r.to_dict() for r in scan(list(shard.files), pipeline, jobs=jobs, max_pixels=max_pixels, threshold=threshold)
    ]
    store.write(shard.index, rows, time.perf_counter() - t0)
    return len(rows)


class _RayShardActor:
    """Loads the model once per actor; scores and commits the shards it is given."""

    def __init__(
        self,
        model_dir: str,
        store_dir: str,
        plan: list[Shard],
        model_version: str,
        max_pixels: int,
        threshold: float | None,
    ) -> None:
        self.pipeline = load_model(model_dir)
        self.store = ShardStore(store_dir, plan, model_version)
        self.shards = {s.index: s for s in plan}
        self.max_pixels, self.threshold = max_pixels, threshold

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        counts = []
        for index in batch["index"]:
            index = int(index)
            if self.store.done(index):  # a retry of a shard that was committed before the worker died
                counts.append(-1)
                continue
            counts.append(
                score_shard(
                    self.shards[index], self.pipeline, self.store, max_pixels=self.max_pixels, threshold=self.threshold
                )
            )
        return {"index": batch["index"], "rows": counts}


def run_scan(
    files: Sequence[str],
    model: DetectionPipeline | str | os.PathLike | None,
    out_dir: str | os.PathLike,
    *,
    engine: str = "local",
    shard_size: int = 256,
    jobs: int = 1,
    address: str | None = None,
    workers: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threshold: float | None = None,
) -> list[dict[str, Any]]:
    """Scan ``files`` in shards under ``out_dir`` on ``engine``; returns every row, in input order.

    Args:
        engine: "local" (this process, ``jobs`` worker processes per shard) or "ray".
        address: Ray cluster address ("auto", "ray://host:10001"); None starts a local Ray instance.
        workers: Ray model actors (default: the cluster's CPU count).
    """
    if engine not in ENGINES:
        raise GendetectError(f"Unknown engine {engine!r}; valid engines: {', '.join(ENGINES)}.")
    pipeline = load_model(model)
    shards = plan_shards(list(files), shard_size)
    store = ShardStore(out_dir, shards, pipeline.version)
    todo = [s for s in shards if not store.done(s.index)]
    logger.info("%d shards, %d to do (%s engine)", len(shards), len(todo), engine)
    if todo and engine == "local":
        for shard in todo:
            score_shard(shard, pipeline, store, max_pixels=max_pixels, threshold=threshold, jobs=jobs)
    elif todo:
        _run_ray(
            todo, shards, pipeline, store, address=address, workers=workers, max_pixels=max_pixels, threshold=threshold
        )
    return store.rows(len(shards))


def _run_ray(
    todo: list[Shard],
    shards: list[Shard],
    pipeline: DetectionPipeline,
    store: ShardStore,
    *,
    address: str | None,
    workers: int | None,
    max_pixels: int,
    threshold: float | None,
) -> None:
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise GendetectError("The ray engine needs the 'ray' extra: pip install 'gendetect[ray]'") from e
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = pipeline.info.get("path")
        if not model_dir:  # an in-memory model: hand the actors a saved copy
            model_dir = str(pipeline.save(Path(tmp) / "model"))
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        ds = ray.data.from_items([{"index": s.index} for s in todo])
        ds = ds.map_batches(
            _RayShardActor,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(n, len(todo))),
            fn_constructor_kwargs={
                "model_dir": model_dir,
                "store_dir": str(store.dir),
                "plan": shards,
                "model_version": pipeline.version,
                "max_pixels": max_pixels,
                "threshold": threshold,
            },
        )
        ds.materialize()
    if started:
        ray.shutdown()
