"""Background jobs on server-side paths: confined to one root, run by a bounded pool, persisted in the result store.

* **Confinement.** Every path, as named and as found in folders, is resolved (``os.path.realpath``: symbolic links
  and ``..`` followed) and must lie inside the allowed root before it is opened. A named path outside the root is
  refused with 403; a file found in a folder that is a link to something outside the root gets an error row and
  is never opened (folder links are not followed at all). Rows name files relative to the root: no absolute
  server path leaves the server.
* **Bounded.** ``workers`` threads run jobs one each; at most ``max_active`` jobs are queued or running, and a
  further submission is refused (:class:`QueueFull`, HTTP 429).
* **Persistent.** Jobs and their rows are written to the :class:`~gendetect.server.store.ResultStore` as they
  progress (in batches). A server that was killed cannot finish its jobs: at the next start, every job still queued
  or running is marked ``failed`` with a message to resubmit it; the rows it had written stay readable.
* **Evicted.** Finished and failed jobs are deleted after ``retention_s`` seconds, and beyond the ``max_kept``
  most recent ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gendetect.output import safe_row
from gendetect.pipeline import DetectionPipeline, ScanInputs, ScanRow
from gendetect.scale.scanning import scan_paths
from gendetect.server.store import ResultStore

logger = logging.getLogger(__name__)

RESTART_REASON = "the server stopped before this job finished; its rows so far are kept; submit it again"
SHUTDOWN_REASON = "the server shut down before this job finished; its rows so far are kept; submit it again"


class PathRefused(Exception):
    """A job path that may not be used; ``status`` is the HTTP status (400 malformed, 403 outside the root)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class QueueFull(Exception):
    """Too many jobs are queued or running."""


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolve_named_path(raw: str, root: str) -> str:
    """The real path of a job path named by a client (relative to ``root`` or absolute), which must be inside the
    real ``root``; :class:`PathRefused` otherwise."""
    if "\x00" in raw:
        raise PathRefused(400, "a job path contains a NUL byte")
    if not raw:
        raise PathRefused(400, "an empty job path; use '.' for the whole root")
    candidate = raw if os.path.isabs(raw) else os.path.join(root, raw)
    try:
        real = os.path.realpath(candidate)
    except (OSError, ValueError) as e:
        raise PathRefused(400, f"cannot resolve job path {raw!r}: {e}") from e
    if not _inside(real, root):
        raise PathRefused(403, f"{raw!r} is outside the allowed root")
    return real


JobInputs = ScanInputs  # what a job will scan: confined files, their shown names, rows for refused inputs


def plan_inputs(raw_paths: Sequence[str], root: Path, *, recursive: bool = True) -> ScanInputs:
    """Resolve and confine a job's paths (see the module docstring). Raises :class:`PathRefused` for a named path
    that is malformed or outside ``root``.

    Returns the :class:`~gendetect.pipeline.ScanInputs` of the job: the real paths to scan, each shown relative to
    the root, and a row (with relative paths only) for every input refused before scanning.
    """
    root_real = os.path.realpath(root)
    named = [resolve_named_path(p, root_real) for p in raw_paths]
    found = ScanInputs.expand(named, recursive=recursive)
    plan = ScanInputs(names=[])
    for p in found.problems:
        plan.problems.append(ScanRow.from_dict(sanitise_row(p.to_dict(), root_real)))
    for f in found.files:
        shown = _relative(f, root_real)
        real = os.path.realpath(f)
        if not _inside(real, root_real):
            plan.problems.append(
                ScanRow.problem(shown, "a symbolic link to a path outside the allowed root; not opened")
            )
            continue
        try:
            mode = os.stat(real).st_mode
        except OSError as e:
            plan.problems.append(ScanRow.problem(shown, f"cannot read: {e.strerror or e}"))
            continue
        if not stat.S_ISREG(mode):
            plan.problems.append(ScanRow.problem(shown, "not a regular file (a FIFO, device or socket); not opened"))
            continue
        plan.files.append(real)
        plan.names.append(shown)
    return plan


def _relative(path: str, root: str) -> str:
    rel = os.path.relpath(path, root) if _inside(os.path.abspath(path), root) else os.path.basename(path)
    return rel.replace(os.sep, "/")


def sanitise_row(row: dict[str, Any], root: str) -> dict[str, Any]:
    """Replace the root's absolute path in every text field of a row (paths, error messages) by a relative one."""
    prefix = root.rstrip(os.sep) + os.sep
    out = {}
    for k, v in row.items():
        if isinstance(v, str) and root in v:
            v = v.replace(prefix, "").replace(root, ".")
        out[k] = v
    return out


@dataclass
class _Live:
    """A job this process is running or will run: progress kept in memory between flushes to the store."""

    id: str
    total: int
    created: dt.datetime
    status: str = "queued"
    done: int = 0
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


class JobManager:
    """Runs jobs on a bounded pool and keeps them in ``store`` (see the module docstring)."""

    def __init__(
        self,
        store: ResultStore,
        pipeline: DetectionPipeline,
        root: Path,
        *,
        workers: int = 1,
        max_active: int = 16,
        retention_s: float = 7 * 86400,
        max_kept: int = 1000,
        max_pixels: int | None = None,
        flush_rows: int = 256,
        flush_s: float = 1.0,
    ) -> None:
        self.store, self.pipeline = store, pipeline
        self.root = os.path.realpath(root)
        self.workers, self.max_active = max(1, workers), max(1, max_active)
        self.retention_s, self.max_kept = retention_s, max_kept
        self.max_pixels = max_pixels
        self.flush_rows, self.flush_s = flush_rows, flush_s
        self._live: dict[str, _Live] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="gendetect-job")
        failed = store.fail_unfinished_jobs(RESTART_REASON)
        if failed:
            logger.warning("%d job(s) left unfinished by a previous server were marked failed", failed)
        self.evict()

    # -- submitting and reading ----------------------------------------------------------------------------------
    def submit(self, plan: ScanInputs) -> dict[str, Any]:
        """Queue a job; :class:`QueueFull` when ``max_active`` jobs are already queued or running."""
        with self._lock:
            if len(self._live) >= self.max_active:
                raise QueueFull(f"{len(self._live)} jobs are queued or running; the limit is {self.max_active}")
            job = _Live(uuid.uuid4().hex[:16], plan.total, dt.datetime.now(dt.timezone.utc))
            self._live[job.id] = job
        try:
            self.store.create_job(job.id, job.total, self.pipeline.version)
            self._pool.submit(self._run, job, plan)
        except BaseException:
            with self._lock:
                self._live.pop(job.id, None)
            raise
        return self.summary(job.id) or {}

    def summary(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            live = self._live.get(job_id)
            if live is not None:
                return self._summary(
                    live.id, live.status, live.done, live.total, dict(live.counts), live.error, live.created, None
                )
        return self.stored_summary(self.store, job_id)

    @classmethod
    def stored_summary(cls, store: ResultStore, job_id: str) -> dict[str, Any] | None:
        """The summary of a job as the result store has it (None when unknown)."""
        job = store.get_job(job_id)
        if job is None:
            return None
        return cls._summary(
            job["id"],
            job["status"],
            job["done"],
            job["total"],
            job["counts"],
            job["error"],
            job["created"],
            job["finished"],
        )

    @staticmethod
    def _summary(
        job_id: str,
        status: str,
        done: int,
        total: int,
        counts: dict[str, int],
        error: str | None,
        created: dt.datetime | None,
        finished: dt.datetime | None,
    ) -> dict[str, Any]:
        return {
            "id": job_id,
            "status": status,
            "done": done,
            "total": total,
            "counts": counts,
            "error": error,
            "created": created.isoformat() if created else None,
            "finished": finished.isoformat() if finished else None,
            "results": f"/v1/jobs/{job_id}/results",
        }

    def rows(self, job_id: str) -> Iterator[dict[str, Any]]:
        """The rows written so far (a running job's last unflushed rows come with its next flush)."""
        return self.store.iter_job_rows(job_id)

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._live)

    # -- running -------------------------------------------------------------------------------------------------
    def _run(self, job: _Live, plan: ScanInputs) -> None:
        if self._stop.is_set():
            return
        with self._lock:
            job.status = "running"
        self.store.set_job_status(job.id, "running")
        buffer: list[dict[str, Any]] = []
        written = 0
        last = time.monotonic()

        def add(row: dict[str, Any]) -> None:
            # JSON-safe values; a non-UTF-8 name becomes escaped text plus the hex of its (relative) bytes
            row = safe_row({k: v for k, v in row.items() if k != "path_bytes"})
            key = row.get("verdict") or "error"
            with self._lock:
                job.counts[key] = job.counts.get(key, 0) + 1
                job.done += 1
            buffer.append(row)

        def flush(status: str | None = None, error: str | None = None) -> None:
            nonlocal written, last
            with self._lock:
                counts = dict(job.counts)
            self.store.append_job_rows(job.id, written, buffer, counts=counts, status=status, error=error)
            written += len(buffer)
            buffer.clear()
            last = time.monotonic()

        try:
            kwargs = {} if self.max_pixels is None else {"max_pixels": self.max_pixels}
            for row in scan_paths(plan, self.pipeline, **kwargs):  # scored rows (relative names), then refused ones
                if self._stop.is_set():
                    break
                add(sanitise_row(row.to_dict(), self.root))
                if len(buffer) >= self.flush_rows or time.monotonic() - last >= self.flush_s:
                    flush()
            if self._stop.is_set():
                flush("failed", SHUTDOWN_REASON)
                final, error = "failed", SHUTDOWN_REASON
            else:
                flush("finished")
                final, error = "finished", None
        except Exception as e:
            logger.exception("job %s failed", job.id)
            final, error = "failed", f"{type(e).__name__}: {e}"
            try:
                flush("failed", sanitise_row({"e": error}, self.root)["e"])
            except Exception:
                logger.exception("job %s: could not record its failure", job.id)
        with self._lock:
            job.status, job.error = final, error
            self._live.pop(job.id, None)
        self.evict()

    def evict(self) -> int:
        """Delete jobs past their retention or beyond ``max_kept``; how many."""
        older = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=self.retention_s)
        try:
            n = self.store.evict_jobs(older_than=older, keep=self.max_kept)
        except Exception:
            logger.exception("evicting old jobs failed")
            return 0
        if n:
            logger.info("evicted %d old job(s)", n)
        return n

    def shutdown(self) -> None:
        """Stop taking jobs; running ones stop after their current image and are marked failed, queued ones too."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            leftover = list(self._live)
            self._live.clear()
        for job_id in leftover:
            self.store.set_job_status(job_id, "failed", SHUTDOWN_REASON)


__all__ = ["JobInputs", "JobManager", "PathRefused", "QueueFull", "plan_inputs", "resolve_named_path", "sanitise_row"]
