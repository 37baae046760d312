"""The engine layer: run a :class:`ShardTask` over shards of work on the ``local`` engine or on Ray Data.

Scanning, feature extraction and dataset generation all cut their input into **shards** (fixed slices of the
item list) and hand them to :func:`run_shards`. A finished shard is committed as ``shards/shard-00042.parquet`` (its
rows) plus ``shards/shard-00042.done.json``, written last, under the run's output folder. Either engine skips
committed shards, so a run killed on one engine resumes on either with no row lost or written twice.

* ``local`` runs the shards one after the other in this process (the task may use worker processes inside a shard).
* ``ray`` turns the shard indices into a Ray Dataset and ``map_batches`` them through a pool of actors, one per CPU
  (or per ``task.num_gpus`` GPUs); each actor calls ``task.setup()`` once (loads its model) and commits the shards
  it is given. Ray restarts a killed actor and retries its shard; since a shard only counts once its ``done.json``
  lands, a retry never duplicates rows.

A task is a small picklable object::

    class Double(ShardTask):
        def plan(self):                  # identity of the run: a rerun into the same folder must match it
            return {"task": "double"}
        def run(self, shard, out_dir):   # one row per item
            return [{"x": x, "y": 2 * x} for x in shard.items]

    run_shards(Double(), range(10), "out/", shard_size=4)    # -> 10 rows, in item order
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gendetect.atomic import atomic_write
from gendetect.errors import GendetectError

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")
FAULT_ENV = "GENDETECT_FAULT_KILL_SHARD"  # "INDEX:MARKER_FILE": kill the worker once on that shard (chaos tests)
SHARDS_DIR = "shards"


@dataclass(frozen=True)
class Shard:
    """A fixed slice of the run's items; ``index`` names its files (``shard-00042.*``)."""

    index: int
    items: tuple[Any, ...]


def plan_shards(items: Sequence[Any], shard_size: int, group_by: Callable[[Any], Any] | None = None) -> list[Shard]:
    """Fixed slices of ``items`` in the given order; the same input always gives the same shards.

    With ``group_by``, a shard never holds items of two groups: a new shard starts wherever the key changes (sort
    the items by that key first), so e.g. each generation shard needs one generator, and one GPU actor keeps one
    model loaded.
    """
    if shard_size < 1:
        raise GendetectError(f"shard size must be >= 1, got {shard_size}")
    shards: list[Shard] = []
    current: list[Any] = []
    key: Any = object()
    for item in items:
        k = group_by(item) if group_by is not None else None
        if current and (len(current) == shard_size or k != key):
            shards.append(Shard(len(shards), tuple(current)))
            current = []
        current.append(item)
        key = k
    if current:
        shards.append(Shard(len(shards), tuple(current)))
    return shards


class ShardTask(ABC):
    """The work done on one shard. Instances are pickled to worker processes and Ray actors: keep them small
    (configs and paths, not loaded models) and load heavy state in :meth:`setup`."""

    num_gpus: float = 0.0  # GPUs each Ray actor reserves (1 for a generator on a GPU cluster)
    num_cpus: float = 1.0  # CPUs each Ray actor reserves

    @abstractmethod
    def plan(self) -> dict[str, Any]:
        """JSON-able identity of the run (model version, config). Stored in ``plan.json``; a rerun into the same
        folder with a different plan is refused instead of mixing two runs' rows."""

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Load models; called once per worker before any :meth:`run`."""

    @abstractmethod
    def run(self, shard: Shard, out_dir: Path) -> list[dict[str, Any]]:
        """Do one shard; return its rows (per-item failures are rows too). Files written under ``out_dir`` must be
        named from the items alone, so a retried shard overwrites them instead of adding copies."""


class ShardStore:
    """``<out_dir>/shards/shard-00042.parquet`` + ``.done.json`` per committed shard, and ``plan.json``."""

    def __init__(self, out_dir: str | os.PathLike, shards: Sequence[Shard], plan: dict[str, Any]) -> None:
        self.out_dir = Path(out_dir)
        self.dir = self.out_dir / SHARDS_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        items = [list(s.items) for s in shards]
        full = {
            **json.loads(json.dumps(plan, sort_keys=True, default=str)),
            "n_shards": len(shards),
            "n_items": sum(len(s.items) for s in shards),
            "first": json.loads(json.dumps(shards[0].items[0], default=str)) if shards else None,
            # every item and the shard boundaries: a resume with other items (an edited caption file, another
            # file list of the same length) is refused instead of mixing two runs' rows
            "items_sha256": hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest(),
        }
        plan_file = self.dir / "plan.json"
        if plan_file.exists():
            old = json.loads(plan_file.read_text())
            if old != full:
                raise GendetectError(
                    f"{self.out_dir} holds shards of another run (plan {_diff(old, full)}); use another output "
                    "folder or delete this one"
                )
        else:
            atomic_write(plan_file, json.dumps(full, indent=2, sort_keys=True))

    def path(self, index: int, ext: str) -> Path:
        return self.dir / f"shard-{index:05d}.{ext}"

    def done(self, index: int) -> bool:
        return self.path(index, "done.json").exists()

    def commit(self, index: int, rows: list[dict[str, Any]], seconds: float) -> None:
        """Write the shard's rows, then its ``done.json``: a shard counts only when complete."""
        tmp = self.path(index, f"parquet.tmp{os.getpid()}")
        columns = list(dict.fromkeys(k for r in rows for k in r))  # every key of every row, not just the first's
        table = pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in rows]) if rows else pa.table({})
        pq.write_table(table, tmp)
        os.replace(tmp, self.path(index, "parquet"))
        stats = {"rows": len(rows), "seconds": round(seconds, 4), "pid": os.getpid(), "host": os.uname().nodename}
        atomic_write(self.path(index, "done.json"), json.dumps(stats))

    def rows(self, shards: Sequence[Shard]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for s in shards:
            if not self.done(s.index):
                raise GendetectError(f"shard {s.index} of {self.dir} is not finished")
            out.extend(pq.read_table(self.path(s.index, "parquet")).to_pylist())
        return out


def _diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys[:3])


def _maybe_fault(index: int) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    target, _, marker = spec.partition(":")
    if int(target) == index and marker and not Path(marker).exists():
        Path(marker).write_text("killed once")
        logger.warning("fault injection: killing worker %d on shard %d", os.getpid(), index)
        os._exit(1)


def run_one(task: ShardTask, shard: Shard, store: ShardStore) -> int:
    """Run and commit one shard; returns its row count."""
    t0 = time.perf_counter()
    _maybe_fault(shard.index)
    rows = task.run(shard, store.out_dir)
    if len(rows) != len(shard.items):
        raise GendetectError(f"{type(task).__name__} returned {len(rows)} rows for {len(shard.items)} items")
    store.commit(shard.index, rows, time.perf_counter() - t0)
    return len(rows)


def run_shards(
    task: ShardTask,
    items: Sequence[Any],
    out_dir: str | os.PathLike,
    *,
    engine: str = "local",
    shard_size: int = 256,
    address: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    group_by: Callable[[Any], Any] | None = None,
) -> list[dict[str, Any]]:
    """Run ``task`` over ``items`` in shards under ``out_dir``; returns every row, in item order.

    Args:
        task: what to do with one shard.
        items: the work, in a stable order (file paths, records, generation jobs): JSON-able values.
        out_dir: output folder; committed shards live in ``out_dir/shards/``.
        engine: ``"local"`` (this process) or ``"ray"`` (Ray Data actors).
        shard_size: items per shard: the unit of work, of retry and of resume.
        address: Ray cluster address (``"auto"``, ``"ray://host:10001"``); None joins the running Ray instance of
            this process, or starts a local one.
        workers: Ray actors (default: the cluster's CPUs, or GPUs / ``task.num_gpus`` for GPU tasks).
        progress: ``progress(done, total)`` called after each shard on the local engine.
        group_by: start a new shard wherever this key of the items changes (see :func:`plan_shards`).
    """
    if engine not in ENGINES:
        raise GendetectError(f"Unknown engine {engine!r}; valid engines: {', '.join(ENGINES)}.")
    shards = plan_shards(items, shard_size, group_by)
    store = ShardStore(out_dir, shards, task.plan())
    todo = [s for s in shards if not store.done(s.index)]
    logger.info("%d shards, %d to do (%s engine)", len(shards), len(todo), engine)
    if todo and engine == "local":
        task.setup()
        for i, shard in enumerate(todo):
            run_one(task, shard, store)
            if progress is not None:
                progress(len(shards) - len(todo) + i + 1, len(shards))
    elif todo:
        _run_ray(task, todo, shards, store, address=address, workers=workers)
    return store.rows(shards)


class _RayShardActor:
    """One per Ray worker: sets the task up once, then runs and commits the shards it is handed."""

    def __init__(self, task: ShardTask, out_dir: str, plan: list[Shard]) -> None:
        self.task = task
        self.task.setup()
        self.store = ShardStore(out_dir, plan, task.plan())
        self.shards = {s.index: s for s in plan}

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        counts = []
        for index in batch["index"]:
            index = int(index)
            if self.store.done(index):  # a retry of a shard committed just before its worker died
                counts.append(-1)
                continue
            counts.append(run_one(self.task, self.shards[index], self.store))
        return {"index": batch["index"], "rows": counts}


def _run_ray(
    task: ShardTask,
    todo: list[Shard],
    shards: list[Shard],
    store: ShardStore,
    *,
    address: str | None,
    workers: int | None,
) -> None:
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise GendetectError("The ray engine needs the 'ray' extra: pip install 'gendetect[ray]'") from e
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        resources = ray.cluster_resources()
        if workers is None:
            if task.num_gpus:
                workers = int(resources.get("GPU", 0) // task.num_gpus)
                if workers < 1:
                    raise GendetectError(
                        f"{type(task).__name__} needs {task.num_gpus} GPU per actor and the Ray cluster has "
                        f"{resources.get('GPU', 0)}; add GPU workers or run with --device cpu"
                    )
            else:
                workers = max(1, int(resources.get("CPU", 1) // max(task.num_cpus, 1e-9)))
        ds = ray.data.from_items([{"index": s.index} for s in todo])
        ds = ds.map_batches(
            _RayShardActor,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=max(1, min(workers, len(todo)))),
            num_gpus=task.num_gpus or None,
            num_cpus=task.num_cpus,
            fn_constructor_kwargs={"task": task, "out_dir": str(store.out_dir), "plan": shards},
        )
        ds.materialize()
    finally:
        if started:
            ray.shutdown()
