"""The engine layer: run a :class:`ShardTask` over shards of work on the ``local`` engine or on Ray Data.

Scanning, feature extraction and dataset generation all cut their input into **shards** (fixed slices of the
item list) and hand them to :func:`run_shards`. A finished shard is committed as ``shards/shard-00042.parquet`` (its
rows) plus ``shards/shard-00042.done.json``, written last, under the run's output folder. Either engine skips
committed shards, so a run killed on one engine resumes on either with no row lost or written twice.

* ``local`` runs the shards one after the other in this process (the task may use worker processes inside a shard;
  its :meth:`ShardTask.session` keeps one pool for all of them).
* ``ray`` turns the shard indices into a Ray Dataset and ``map_batches`` them through a pool of actors, one per CPU
  (or per ``task.num_gpus`` GPUs); each actor calls ``task.setup()`` once (loads its model) and commits the shards
  it is given. Ray restarts a killed actor and retries its shard; since a shard only counts once its ``done.json``
  lands, a retry never duplicates rows.

Tasks over files (``ShardTask.stamps_items``, e.g. scans) resume **incrementally**: every committed shard records
the size and modification time of its files, so a rerun over a folder that gained, lost or changed files keeps every
committed row whose file is unchanged and scans only the new and modified files, in new shards.

The final table of a run is built from the shard files with pyarrow, one shard at a time (:class:`ShardedRun`), so
neither the rows nor Python dicts of them are held in memory; :meth:`ShardedRun.write_parquet` writes it to a
temporary name and renames it into place.

A task is a small picklable object::

    class Double(ShardTask):
        def plan(self):                  # identity of the run: a rerun into the same folder must match it
            return {"task": "double"}
        def run(self, shard, out_dir):   # one row per item
            return [{"x": x, "y": 2 * x} for x in shard.items]

    run_shards(Double(), range(10), "out/", shard_size=4)    # -> 10 rows, in item order
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gendetect.atomic import atomic_path, atomic_write
from gendetect.errors import GendetectError, require
from gendetect.scale.options import ENGINES, EngineOptions

logger = logging.getLogger(__name__)

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

    def setup(self) -> None:  # an optional hook
        """Load models; called once per worker before any :meth:`run`."""

    @abstractmethod
    def run(self, shard: Shard, out_dir: Path) -> list[dict[str, Any]]:
        """Do one shard; return its rows (per-item failures are rows too). Files written under ``out_dir`` must be
        named from the items alone, so a retried shard overwrites them instead of adding copies."""

    # items are file paths: committed shards record each file's size and mtime and resume incrementally
    stamps_items: bool = False

    def session(self) -> contextlib.AbstractContextManager[Any]:
        """Context kept open around all the shards one worker runs (e.g. one process pool for the whole run)."""
        return contextlib.nullcontext()


def file_stamp(path: str | os.PathLike) -> list[int] | None:
    """``[size, mtime_ns]`` of a file (None when it cannot be stat'ed): what tells a resumed run it changed."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


def _items_sha256(shards: Sequence[Shard]) -> str:
    """sha256 of the JSON of every shard's items, encoded piece by piece (no string of the whole run in memory)."""
    h = hashlib.sha256()
    for chunk in json.JSONEncoder(sort_keys=True, default=str).iterencode([list(s.items) for s in shards]):
        h.update(chunk.encode())
    return h.hexdigest()


_RUN_KEYS = ("n_shards", "n_items", "first", "items_sha256", "resume")


class ShardStore:
    """``<out_dir>/shards/shard-00042.parquet`` + ``.done.json`` per committed shard, and ``plan.json``.

    With ``incremental`` (tasks over files), ``plan.json`` holds only the task's identity and each ``done.json``
    lists its items with their ``[size, mtime_ns]``: see :meth:`resume_plan`. Otherwise ``plan.json`` also pins every
    item, and a rerun with other items is refused.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        shards: Sequence[Shard] | None,
        plan: dict[str, Any],
        *,
        incremental: bool = False,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.dir = self.out_dir / SHARDS_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self.incremental = incremental
        identity = json.loads(json.dumps(plan, sort_keys=True, default=str))
        if incremental:
            full = {**identity, "resume": "incremental"}
        else:
            shards = list(shards or [])
            full = {
                **identity,
                "n_shards": len(shards),
                "n_items": sum(len(s.items) for s in shards),
                "first": json.loads(json.dumps(shards[0].items[0], default=str)) if shards else None,
                # every item and the shard boundaries: a resume with other items (an edited caption file, another
                # file list of the same length) is refused instead of mixing two runs' rows
                "items_sha256": _items_sha256(shards),
            }
        plan_file = self.dir / "plan.json"
        if plan_file.exists():
            old = json.loads(plan_file.read_text())
            same = old == full
            if incremental:  # only the identity counts; a folder of an older gendetect resumes too
                same = {k: v for k, v in old.items() if k not in _RUN_KEYS} == identity
            if not same:
                raise GendetectError(
                    f"{self.out_dir} holds shards of another run (plan {_diff(old, full)}); use another output "
                    "folder or delete this one"
                )
            if old != full:
                atomic_write(plan_file, json.dumps(full, indent=2, sort_keys=True))
        else:
            atomic_write(plan_file, json.dumps(full, indent=2, sort_keys=True))

    def path(self, index: int, ext: str) -> Path:
        return self.dir / f"shard-{index:05d}.{ext}"

    def done(self, index: int) -> bool:
        return self.path(index, "done.json").exists()

    def committed(self) -> dict[int, dict[str, Any]]:
        """``done.json`` of every committed shard, by index."""
        out: dict[int, dict[str, Any]] = {}
        for p in self.dir.glob("shard-*.done.json"):
            try:
                out[int(p.name[len("shard-") :].split(".", 1)[0])] = json.loads(p.read_text())
            except (ValueError, OSError):  # a foreign file, or one being replaced right now: not a commit
                continue
        return out

    def commit(
        self,
        index: int,
        rows: list[dict[str, Any]],
        seconds: float,
        *,
        items: Sequence[Any] | None = None,
        stamps: Sequence[list[int] | None] | None = None,
    ) -> None:
        """Write the shard's rows, then its ``done.json``: a shard counts only when complete."""
        from gendetect.output import safe_row  # non-UTF-8 names: escaped text + path_bytes, never a crash (issue 16)

        rows = [safe_row(r) for r in rows]
        columns = list(dict.fromkeys(k for r in rows for k in r))  # every key of every row, not just the first's
        table = pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in rows]) if rows else pa.table({})
        with atomic_path(self.path(index, "parquet")) as tmp:
            pq.write_table(table, tmp)
        stats: dict[str, Any] = {
            "rows": len(rows),
            "seconds": round(seconds, 4),
            "pid": os.getpid(),
            "host": os.uname().nodename,
        }
        if stamps is not None:
            stats["items"] = [str(i) for i in (items or ())]
            stats["stamps"] = list(stamps)
        atomic_write(self.path(index, "done.json"), json.dumps(stats))

    def resume_plan(
        self, items: Sequence[str], shard_size: int
    ) -> tuple[list[Shard], list[Shard], dict[int, np.ndarray]]:
        """Plan an incremental run over the files ``items``: ``(shards in output order, shards to run, row masks)``.

        A committed row is kept when its file is still listed with the same size and mtime; a committed shard whose
        rows are all superseded (files removed, modified or rescanned since) is left out, one with some kept gets a
        row mask. Every file without a kept row (new, modified, or in an unfinished shard) goes into a new shard;
        runs of such files that are contiguous in ``items`` share shards, and all shards are put in the order of
        their first file in ``items``. So a plain resume gives exactly the rows, and the row order, of an
        uninterrupted run; after files were added among committed ones, the rows come shard by shard (the new
        files' rows after the committed shard they fall in), not in strict input order. A file listed twice gets
        one row once the run has been resumed with other files.
        """
        done = self.committed()
        fresh = plan_shards(items, shard_size)
        if not done:
            return fresh, fresh, {}
        by_index = {s.index: s for s in fresh}
        if all(
            i in by_index
            and d.get("items") == [str(x) for x in by_index[i].items]
            and d.get("stamps") == [file_stamp(x) for x in by_index[i].items]
            for i, d in done.items()
        ):  # a plain resume: same files, unchanged, same shard size
            return fresh, [s for s in fresh if s.index not in done], {}

        pos = {p: k for k, p in enumerate(items)}
        owner: dict[str, tuple[int, int]] = {}
        for index in sorted(done):
            d = done[index]
            for j, (p, stamp) in enumerate(zip(d.get("items") or [], d.get("stamps") or [])):
                if stamp is not None and p in pos and file_stamp(p) == stamp:
                    owner[p] = (index, j)  # a later shard (a rescan) wins
        ordered: list[tuple[int, Shard]] = []
        keep: dict[int, np.ndarray] = {}
        for index in sorted(done):
            its = done[index].get("items") or []
            mask = np.fromiter((owner.get(p) == (index, j) for j, p in enumerate(its)), bool, len(its))
            if not mask.any():
                continue
            if not mask.all():
                keep[index] = mask
            ordered.append((pos[its[int(np.argmax(mask))]], Shard(index, tuple(its))))
        todo_items = [(k, p) for k, p in enumerate(items) if p not in owner]
        run_of: dict[int, int] = {}
        run = 0
        for (k, _), prev in zip(todo_items, [None, *todo_items[:-1]]):
            if prev is not None and k != prev[0] + 1:
                run += 1
            run_of[k] = run
        next_index = max(done) + 1
        new = [
            Shard(next_index + s.index, tuple(p for _, p in s.items))
            for s in plan_shards(todo_items, shard_size, group_by=lambda kp: run_of[kp[0]])
        ]
        ordered += [(pos[s.items[0]], s) for s in new]
        ordered.sort(key=lambda t: t[0])
        logger.info(
            "incremental resume: %d committed rows kept, %d files to scan in %d new shards",
            len(owner),
            len(todo_items),
            len(new),
        )
        return [s for _, s in ordered], new, keep

    def rows(self, shards: Sequence[Shard]) -> list[dict[str, Any]]:
        return ShardedRun(self, list(shards)).to_pylist()


@dataclass
class ShardedRun:
    """The result of a sharded run, read from its shard files on demand, one shard at a time.

    ``shards`` are in output order; ``keep`` masks the rows of shards that an incremental resume partly superseded.
    """

    store: ShardStore
    shards: list[Shard]
    keep: dict[int, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(int(self.keep[s.index].sum()) if s.index in self.keep else len(s.items) for s in self.shards)

    def _check(self) -> None:
        for s in self.shards:
            if not self.store.done(s.index):
                raise GendetectError(f"shard {s.index} of {self.store.dir} is not finished")

    def tables(self) -> Iterator[pa.Table]:
        """Each shard's rows as an Arrow table, in order."""
        self._check()
        for s in self.shards:
            table = pq.read_table(self.store.path(s.index, "parquet"))
            if s.index in self.keep:
                table = table.filter(pa.array(self.keep[s.index]))
            yield table

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row as a dict, streamed shard by shard (every shard's columns; absent values are None)."""
        schema = self.schema()
        for table in self.tables():
            yield from _conform(table, schema).to_pylist()

    def to_pylist(self) -> list[dict[str, Any]]:
        return list(self.rows())

    def schema(self, extra: Iterable[pa.Schema] = ()) -> pa.Schema:
        """One schema for every shard (columns in first-seen order, types promoted: null -> string, int -> float)."""
        self._check()
        schemas = [pq.read_schema(self.store.path(s.index, "parquet")) for s in self.shards]
        schemas = [sc for sc in [*schemas, *extra] if len(sc)]
        if not schemas:
            return pa.schema([])
        # a column that some shards hold as JSON text and others as lists (shards written before a scan's lists
        # became JSON text): text in all, which _conform gives each shard
        text = {f.name for sc in schemas for f in sc if pa.types.is_string(f.type)}
        schemas = [
            pa.schema(
                [pa.field(f.name, pa.string()) if f.name in text and pa.types.is_nested(f.type) else f for f in sc]
            )
            for sc in schemas
        ]
        return pa.unify_schemas([sc.remove_metadata() for sc in schemas], promote_options="permissive")

    def value_counts(self, column: str) -> Counter:
        """Counts of the values of ``column`` over every row (None for rows without it)."""
        counts: Counter = Counter()
        for table in self.tables():
            if column in table.column_names:
                counts.update(table.column(column).to_pylist())
            else:
                counts[None] += table.num_rows
        return counts

    def write_parquet(
        self,
        path: str | os.PathLike,
        *,
        extra_rows: Sequence[dict[str, Any]] = (),
        metadata: dict[bytes, bytes] | None = None,
        types: Mapping[str, pa.DataType] | None = None,
    ) -> int:
        """Write every row (then ``extra_rows``) to one Parquet file, atomically: shard tables are appended to a
        temporary file one at a time, which is renamed into place at the end. Returns the row count.

        ``types`` fixes the type of the columns it names (a column all null in every shard would otherwise be
        typed null, and the schema would depend on the files)."""
        path = Path(path)
        extra = pa.Table.from_pylist(list(extra_rows)) if extra_rows else None
        if extra is not None:  # lists where the shards hold JSON text (a scan's findings): as JSON text too
            shard_types = {f.name: f.type for f in self.schema()}
            for i, f in enumerate(extra.schema):
                if pa.types.is_nested(f.type) and pa.types.is_string(shard_types.get(f.name, pa.null())):
                    extra = extra.set_column(
                        i,
                        f.name,
                        _conform(extra.select([f.name]), pa.schema([pa.field(f.name, pa.string())])).column(0),
                    )
        schema = self.schema([extra.schema] if extra is not None else [])
        if types:
            schema = pa.schema([pa.field(f.name, types.get(f.name, f.type)) for f in schema])
        if metadata:
            schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
        path.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
            for table in itertools.chain(self.tables(), [extra] if extra is not None else []):
                writer.write_table(_conform(table, schema))
                n += table.num_rows
        return n


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: missing ones as nulls, others cast to the promoted type."""
    columns = []
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            if col.type != f.type and pa.types.is_string(f.type) and pa.types.is_nested(col.type):
                # nested values (a shard written before they became JSON text) as JSON text
                col = pa.array(
                    [None if v is None else json.dumps(v, ensure_ascii=False) for v in col.to_pylist()], pa.string()
                )
            columns.append(col if col.type == f.type else col.cast(f.type))
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


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
    stamps = [file_stamp(item) for item in shard.items] if task.stamps_items else None  # before reading them
    rows = task.run(shard, store.out_dir)
    if len(rows) != len(shard.items):
        raise GendetectError(f"{type(task).__name__} returned {len(rows)} rows for {len(shard.items)} items")
    store.commit(shard.index, rows, time.perf_counter() - t0, items=shard.items, stamps=stamps)
    return len(rows)


def run_sharded(
    task: ShardTask,
    items: Sequence[Any],
    out_dir: str | os.PathLike,
    options: EngineOptions | None = None,
    *,
    group_by: Callable[[Any], Any] | None = None,
    engine: str | None = None,
    shard_size: int | None = None,
    address: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ShardedRun:
    """Run ``task`` over ``items`` in shards under ``out_dir``; returns the run, whose rows are read from the shard
    files on demand (:meth:`ShardedRun.rows`, :meth:`ShardedRun.write_parquet`).

    Args:
        task: what to do with one shard.
        items: the work, in a stable order (file paths, records, generation jobs): JSON-able values.
        out_dir: output folder; committed shards live in ``out_dir/shards/``.
        options: where and in what pieces the run executes (:class:`~gendetect.scale.options.EngineOptions`):
            the engine (``"local"``: this process; ``"ray"``: Ray Data actors; see :data:`ENGINES`), the Ray
            ``address`` and ``workers`` (default: the cluster's CPUs, or GPUs / ``task.num_gpus`` for GPU tasks),
            ``shard_size`` (the unit of work, of retry and of resume) and ``progress(done, total)``, called after
            each shard on the local engine.
        group_by: start a new shard wherever this key of the items changes (see :func:`plan_shards`); not used by
            incremental tasks (``task.stamps_items``).
        engine, shard_size, address, workers, progress: the fields of ``options`` as separate keywords, for
            callers that do not build an ``EngineOptions`` yet (they override ``options``' values).
    """
    opts = EngineOptions.resolve(
        options, engine=engine, shard_size=shard_size, address=address, workers=workers, progress=progress
    )
    run_engine = ENGINES.get(opts.engine)
    keep: dict[int, np.ndarray] = {}
    if task.stamps_items:
        store = ShardStore(out_dir, None, task.plan(), incremental=True)
        shards, todo, keep = store.resume_plan([str(i) for i in items], opts.shard_size)
    else:
        shards = plan_shards(items, opts.shard_size, group_by)
        store = ShardStore(out_dir, shards, task.plan())
        todo = [s for s in shards if not store.done(s.index)]
    logger.info("%d shards, %d to do (%s engine)", len(shards), len(todo), opts.engine)
    if todo:
        run_engine(task, todo, shards, store, opts)
    return ShardedRun(store, shards, keep)


def run_shards(
    task: ShardTask,
    items: Sequence[Any],
    out_dir: str | os.PathLike,
    options: EngineOptions | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """:func:`run_sharded`, with every row as a dict, in order (small runs; large ones stream from the run)."""
    return run_sharded(task, items, out_dir, options, **kwargs).to_pylist()


def run_local(
    task: ShardTask, todo: Sequence[Shard], shards: Sequence[Shard], store: ShardStore, options: EngineOptions
) -> None:
    """The ``local`` engine: the shards one after the other in this process, inside one :meth:`ShardTask.session`
    (e.g. one worker pool for every shard); ``options.progress(done, total)`` after each."""
    task.setup()
    with task.session():
        for i, shard in enumerate(todo):
            run_one(task, shard, store)
            if options.progress is not None:
                options.progress(len(shards) - len(todo) + i + 1, len(shards))


class _RayShardActor:
    """One per Ray worker: sets the task up once, then runs and commits the shards it is handed."""

    def __init__(self, task: ShardTask, out_dir: str, plan: list[Shard]) -> None:
        self.task = task
        self.task.setup()
        self._session = task.session()  # kept for the actor's lifetime (it ends with the process)
        self._session.__enter__()
        self.store = ShardStore(out_dir, plan, task.plan(), incremental=task.stamps_items)
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


def run_ray(
    task: ShardTask, todo: Sequence[Shard], shards: Sequence[Shard], store: ShardStore, options: EngineOptions
) -> None:
    """The ``ray`` engine: the shard indices become a Ray Dataset, ``map_batches``-ed through a pool of
    :class:`_RayShardActor` (``options.workers`` of them; default one per CPU, or per ``task.num_gpus`` GPUs),
    on the cluster at ``options.address`` (None: the running instance of this process, or a new local one)."""
    address, workers = options.address, options.workers
    ray = require("ray", "ray", "the ray engine")
    require("ray.data", "ray", "the ray engine")  # ray[data], not only ray
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
            fn_constructor_kwargs={"task": task, "out_dir": str(store.out_dir), "plan": list(shards)},
        )
        ds.materialize()
    finally:
        if started:
            ray.shutdown()
