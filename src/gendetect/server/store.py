"""Result store: one row per (image sha256, model version), so a second upload is answered without rescoring; plus
the server's background jobs and their rows, so that a restart loses no finished result.

SQLite (embedded, the default) and PostgreSQL go through the same SQLAlchemy Core code; pick one with a URL:
``sqlite:///results.sqlite`` or ``postgresql+psycopg://user@host/db``. File-backed SQLite runs in WAL mode so that
job workers can write rows while requests read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from gendetect.hub import cache_root

metadata = MetaData()
# The pixel part of an upload's scan row. Stores written before this table kept a table "results" of a few columns
# (p_fake, verdict, threshold, format, width, height): an answer rebuilt from them lacked the mode, JPEG quality and
# tile counts of a fresh one. That table is left as it is and no longer read, so those uploads are scored once more.
upload_results = Table(
    "upload_results",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("model_version", String(128), primary_key=True),
    Column("p_fake", Float),  # also in ``row``: here for people who query the database
    Column("verdict", String(16)),  # the pixel verdict (the file's evidence is read again on every upload)
    Column("row", Text, nullable=False),  # the scan row's pixel fields as JSON (no path, no evidence fields)
    Column("filename", String(512)),  # the name of the first upload
    Column("created", DateTime(timezone=True), nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False, index=True),  # queued | running | finished | failed
    Column("total", Integer, nullable=False),
    Column("done", Integer, nullable=False),
    Column("counts", Text),  # JSON {verdict or "error": n}, written as rows are flushed
    Column("error", Text),
    Column("model_version", String(128)),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Column("finished", DateTime(timezone=True)),
)

job_rows = Table(
    "job_rows",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("row", Text, nullable=False),  # one scan row as JSON
)

ACTIVE = ("queued", "running")


def default_db_url() -> str:
    cache = cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{cache / 'results.sqlite'}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives naive datetimes back; they were written in UTC."""
    return t.replace(tzinfo=dt.timezone.utc) if t is not None and t.tzinfo is None else t


class ResultStore:
    """Get and put scan results keyed by ``(sha256, model_version)``; keep jobs and their rows."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_db_url()
        kwargs: dict[str, Any] = {}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if self.url in ("sqlite://", "sqlite:///:memory:"):
                kwargs["poolclass"] = StaticPool  # one shared in-memory database, not one per connection
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.url.startswith("sqlite") and "poolclass" not in kwargs:
            event.listen(self.engine, "connect", _sqlite_wal)
        metadata.create_all(self.engine)

    # -- per-image results ---------------------------------------------------------------------------------------
    def get(self, sha256: str, model_version: str) -> dict[str, Any] | None:
        """The row stored by :meth:`put` for this image and model version, or None."""
        key = (upload_results.c.sha256 == sha256, upload_results.c.model_version == model_version)
        with self.engine.connect() as conn:
            text = conn.execute(select(upload_results.c.row).where(*key)).scalar()
        return None if text is None else json.loads(text)

    def put(self, sha256: str, model_version: str, row: dict[str, Any], *, filename: str | None = None) -> None:
        """Keep ``row`` (a JSON-able dict: the pixel fields of a scan row) for this image and model version."""
        values = {"p_fake": row.get("p_fake"), "verdict": row.get("verdict"), "row": json.dumps(row, default=str)}
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    upload_results.insert().values(
                        sha256=sha256, model_version=model_version, filename=filename, created=_now(), **values
                    )
                )
        except IntegrityError:  # the same image scored concurrently: the first result stays
            pass

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(upload_results)).scalar_one())

    # -- jobs ----------------------------------------------------------------------------------------------------
    def create_job(self, job_id: str, total: int, model_version: str) -> None:
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(
                jobs.insert().values(
                    id=job_id,
                    status="queued",
                    total=total,
                    done=0,
                    counts="{}",
                    model_version=model_version,
                    created=now,
                    updated=now,
                )
            )

    def append_job_rows(
        self,
        job_id: str,
        start: int,
        rows: Sequence[dict[str, Any]],
        *,
        counts: dict[str, int],
        status: str | None = None,
        error: str | None = None,
    ) -> None:
        """Write ``rows`` as numbers ``start, start+1, ...`` and the job's progress, in one transaction."""
        now = _now()
        values: dict[str, Any] = {"done": start + len(rows), "counts": json.dumps(counts), "updated": now}
        if status is not None:
            values["status"] = status
            if status not in ACTIVE:
                values["finished"] = now
        if error is not None:
            values["error"] = error
        with self.engine.begin() as conn:
            if rows:
                conn.execute(
                    job_rows.insert(),
                    [
                        {"job_id": job_id, "seq": start + i, "row": json.dumps(r, default=str)}
                        for i, r in enumerate(rows)
                    ],
                )
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))

    def set_job_status(self, job_id: str, status: str, error: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "updated": _now()}
        if status not in ACTIVE:
            values["finished"] = values["updated"]
        if error is not None:
            values["error"] = error
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        if row is None:
            return None
        job = dict(row)
        job["counts"] = json.loads(job["counts"] or "{}")
        for k in ("created", "updated", "finished"):
            job[k] = _aware(job[k])
        return job

    def iter_job_rows(self, job_id: str, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """The job's rows in order, read ``batch`` at a time (a million-row job is not loaded at once)."""
        seq = -1
        while True:
            with self.engine.connect() as conn:
                chunk = conn.execute(
                    select(job_rows.c.seq, job_rows.c.row)
                    .where(job_rows.c.job_id == job_id, job_rows.c.seq > seq)
                    .order_by(job_rows.c.seq)
                    .limit(batch)
                ).all()
            for s, text in chunk:
                seq = s
                yield json.loads(text)
            if len(chunk) < batch:
                return

    def fail_unfinished_jobs(self, reason: str) -> int:
        """Mark every queued or running job failed (a server that stopped cannot finish them); how many."""
        now = _now()
        with self.engine.begin() as conn:
            res = conn.execute(
                update(jobs)
                .where(jobs.c.status.in_(ACTIVE))
                .values(status="failed", error=reason, updated=now, finished=now)
            )
        return int(res.rowcount or 0)

    def evict_jobs(self, *, older_than: dt.datetime | None = None, keep: int | None = None) -> int:
        """Delete finished or failed jobs (and their rows) that ended before ``older_than``, and all but the ``keep``
        most recent ones; active jobs are never evicted. Returns how many were deleted."""
        doomed: set[str] = set()
        with self.engine.connect() as conn:
            ended = jobs.c.status.not_in(ACTIVE)
            if older_than is not None:
                doomed.update(conn.execute(select(jobs.c.id).where(ended, jobs.c.finished < older_than)).scalars())
            if keep is not None:
                stale = select(jobs.c.id).where(ended).order_by(jobs.c.finished.desc(), jobs.c.id).offset(keep)
                doomed.update(conn.execute(stale).scalars())
        if not doomed:
            return 0
        ids = sorted(doomed)
        with self.engine.begin() as conn:
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                conn.execute(delete(job_rows).where(job_rows.c.job_id.in_(part)))
                conn.execute(delete(jobs).where(jobs.c.id.in_(part)))
        return len(ids)

    def count_jobs(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(jobs)).scalar_one())


def _sqlite_wal(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
    finally:
        cur.close()
