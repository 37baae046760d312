"""The HTTP service: ``create_app(model)`` returns a FastAPI app that loads the model once.

Endpoints (OpenAPI docs at ``/docs``):

* ``GET /`` the web page; ``GET /healthz``;
* ``GET /v1/models``: the model, its version, threshold and card summary;
* ``POST /v1/detect``: one or several uploaded images -> score, verdict, threshold, model, version, sha256;
* ``POST /v1/jobs``: server-side paths under ``allow_root``, scored in the background;
  ``GET /v1/jobs/{id}`` progress; ``GET /v1/jobs/{id}/results?format=json|csv``.

Uploads are read into memory up to ``max_upload_bytes`` and never written to disk by gendetect (Starlette spools
large multipart parts to its own temporary files and deletes them after the request). Every bad input gets a 4xx
with a message; scoring errors of one image in a batch are reported per item.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gendetect.errors import GendetectError, ImageLoadError
from gendetect.imageio import DEFAULT_MAX_PIXELS, load_image_with_info
from gendetect.pipeline import DetectionPipeline, expand_inputs, load_model, scan

try:
    from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("The HTTP service needs the 'serve' extra: pip install 'gendetect[serve]'") from e

from gendetect.server.store import ResultStore

logger = logging.getLogger(__name__)


@dataclass
class ServerSettings:
    """Limits and options of the service."""

    token: str | None = None  # require "Authorization: Bearer <token>" on /v1/* when set
    db_url: str | None = None  # result store; None: SQLite under GENDETECT_CACHE or ~/.cache/gendetect
    allow_root: Path | None = None  # jobs may only read below this folder; None disables jobs
    max_upload_bytes: int = 25 * 2**20  # per file
    max_pixels: int = DEFAULT_MAX_PIXELS  # per image, checked from the header before decoding
    max_batch: int = 32  # files per /v1/detect request
    max_job_files: int = 100_000
    use_store: bool = True


class JobRequest(BaseModel):
    """Server-side inputs for a background job: files or folders below the allowed root."""

    paths: list[str]
    recursive: bool = True


@dataclass
class Job:
    id: str
    total: int
    done: int = 0
    status: str = "queued"  # queued | running | finished | failed
    error: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for r in self.rows:
            key = r.get("verdict") or "error"
            counts[key] = counts.get(key, 0) + 1
        return {
            "id": self.id,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "counts": counts,
            "error": self.error,
            "results": f"/v1/jobs/{self.id}/results",
        }


def card_summary(pipeline: DetectionPipeline) -> dict[str, Any]:
    """What a person should know before trusting a verdict: training data, false-positive rate, whether P(fake) is
    calibrated, and the warnings of the shortcut audit run on its training data."""
    from gendetect.evaluation.audit import audit_warnings

    info = pipeline.info
    training = info.get("training", {})
    rule = info.get("threshold_rule", {})
    validation = info.get("validation", {}).get("all", {})
    fpr = None if validation.get("acc_real") is None else 1.0 - validation["acc_real"]
    return {
        "trained_on": training.get("data"),
        "n_training_images": training.get("n_images"),
        "training_labels": training.get("labels"),
        "target_fpr": rule.get("target_fpr"),
        "validation_fpr": fpr,
        "validation_tpr": validation.get("acc_fake"),
        "validation_auc": validation.get("auc"),
        "validation_tpr_at_1fpr": validation.get("tpr_at_1fpr"),
        "validation_scheme": rule.get("scheme"),
        "validation_groups": {
            g: {k: m.get(k) for k in ("n_real", "n_fake", "auc", "acc_real", "acc_fake")}
            for g, m in info.get("validation", {}).items()
            if isinstance(m, dict) and "auc" in m
        },
        "threshold_rule": rule.get("rule"),
        # without a calibrator P(fake) is the detector's score: the page must not call it a probability
        "calibrated": pipeline.calibrator is not None,
        "audit_warnings": audit_warnings(info.get("audit")),
    }


def create_app(model: DetectionPipeline | str | None = None, settings: ServerSettings | None = None) -> FastAPI:
    """Build the app; the model is loaded here, once."""
    settings = settings or ServerSettings()
    pipeline = load_model(model)
    version = pipeline.version
    store = ResultStore(settings.db_url) if settings.use_store else None
    jobs: dict[str, Job] = {}
    jobs_lock = threading.Lock()

    app = FastAPI(
        title="gendetect",
        version=_package_version(),
        description="Tell real photographs from generated images. Label 'fake' means generated.",
    )
    app.state.pipeline, app.state.settings, app.state.store = pipeline, settings, store

    def check_token(request: Request) -> None:
        if settings.token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(value.strip(), settings.token):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(GendetectError)
    async def _gendetect_error(request: Request, exc: GendetectError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return (resources.files("gendetect.server") / "static" / "index.html").read_text(encoding="utf-8")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": pipeline.name, "version": version}

    @app.get("/v1/models", dependencies=[Depends(check_token)])
    def models() -> list[dict[str, Any]]:
        return [
            {
                "id": pipeline.name,
                "version": version,
                "threshold": pipeline.threshold,
                "uncertain_from": pipeline.uncertain_from,
                "extractor": pipeline.extractor.get_config(),
                "detector": pipeline.detector.get_config()["name"],
                "card": card_summary(pipeline),
                "limits": {
                    "max_upload_bytes": settings.max_upload_bytes,
                    "max_pixels": settings.max_pixels,
                    "max_batch": settings.max_batch,
                },
            }
        ]

    def score_bytes(data: bytes, filename: str | None) -> dict[str, Any]:

        sha = hashlib.sha256(data).hexdigest()
        base = {
            "filename": filename,
            "sha256": sha,
            "model": pipeline.name,
            "version": version,
            "threshold": pipeline.threshold,
        }
        if store is not None and (hit := store.get(sha, version)) is not None:
            return {
                **base,
                "status": "ok",
                "p_fake": hit["p_fake"],
                "verdict": hit["verdict"],
                "format": hit["format"],
                "width": hit["width"],
                "height": hit["height"],
                "cached": True,
            }
        image, info = load_image_with_info(data, max_pixels=settings.max_pixels)  # ImageLoadError -> caller
        p = float(pipeline.predict_proba([image])[0])
        result = {
            **base,
            "status": "ok",
            "p_fake": p,
            "verdict": pipeline.verdict(p),
            "format": info.format,
            "width": info.width,
            "height": info.height,
            "cached": False,
        }
        if store is not None:
            store.put(sha, version, result)
        return result

    @app.post("/v1/detect", dependencies=[Depends(check_token)])
    def detect(files: list[UploadFile] = File(..., description="one or more images")) -> dict[str, Any]:
        if not files:
            raise HTTPException(400, "no files uploaded; send multipart field 'files'")
        if len(files) > settings.max_batch:
            raise HTTPException(413, f"{len(files)} files in one request; the limit is {settings.max_batch}")
        out = []
        for f in files:
            data = f.file.read(settings.max_upload_bytes + 1)
            name = f.filename
            if len(data) > settings.max_upload_bytes:
                item = {
                    "filename": name,
                    "status": "error",
                    "http_status": 413,
                    "error": f"file larger than the {settings.max_upload_bytes // 2**20} MiB upload limit",
                }
            elif not data:
                item = {"filename": name, "status": "error", "http_status": 400, "error": "empty file"}
            else:
                try:
                    item = score_bytes(data, name)
                except ImageLoadError as e:
                    msg = str(e).removeprefix("<bytes>: ")
                    item = {"filename": name, "status": "error", "http_status": 422, "error": msg}
            out.append(item)
        if len(out) == 1 and out[0]["status"] == "error":
            raise HTTPException(out[0]["http_status"], f"{out[0]['filename']}: {out[0]['error']}")
        for item in out:
            item.pop("http_status", None)
        return {"model": pipeline.name, "version": version, "results": out}

    def resolve_under_root(raw: str) -> Path:
        root = settings.allow_root
        if root is None:
            raise HTTPException(403, "jobs on server-side paths are disabled; start the server with --allow-root DIR")
        root = root.resolve()
        candidate = Path(raw)
        path = (candidate if candidate.is_absolute() else root / candidate).resolve()
        if path != root and root not in path.parents:
            raise HTTPException(403, f"{raw!r} is outside the allowed root")
        return path

    def run_job(job: Job, files: list[str], problems: list) -> None:
        job.status = "running"
        try:
            for row in scan(files, pipeline, max_pixels=settings.max_pixels):
                job.rows.append(row.to_dict())
                job.done += 1
            for p in problems:
                job.rows.append(p.to_dict())
                job.done += 1
            job.status = "finished"
        except Exception as e:  # noqa: BLE001 - a job thread must record its failure, not vanish
            logger.exception("job %s failed", job.id)
            job.status, job.error = "failed", f"{type(e).__name__}: {e}"

    @app.post("/v1/jobs", status_code=202, dependencies=[Depends(check_token)])
    def create_job(request: JobRequest) -> dict[str, Any]:
        if not request.paths:
            raise HTTPException(400, "no paths given")
        paths = [resolve_under_root(p) for p in request.paths]
        files, problems = expand_inputs(paths, recursive=request.recursive)
        root = str(settings.allow_root.resolve())
        for p in problems:  # never reveal absolute server paths beyond the root's own name
            p.path = p.path.replace(root, ".", 1)
        if len(files) > settings.max_job_files:
            raise HTTPException(413, f"{len(files)} files; the job limit is {settings.max_job_files}")
        job = Job(id=uuid.uuid4().hex[:12], total=len(files) + len(problems))
        with jobs_lock:
            jobs[job.id] = job
        threading.Thread(target=run_job, args=(job, files, problems), daemon=True, name=f"job-{job.id}").start()
        return job.summary()

    def get_job(job_id: str) -> Job:
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job

    @app.get("/v1/jobs/{job_id}", dependencies=[Depends(check_token)])
    def job_status(job_id: str) -> dict[str, Any]:
        return get_job(job_id).summary()

    @app.get("/v1/jobs/{job_id}/results", dependencies=[Depends(check_token)])
    def job_results(job_id: str, format: str = "json") -> Response:  # noqa: A002 - the query parameter's name
        job = get_job(job_id)
        if format == "json":
            return JSONResponse({**job.summary(), "rows": job.rows})
        if format == "csv":
            buf = io.StringIO()
            fields = list(dict.fromkeys(k for r in job.rows for k in r)) or ["path"]
            writer = csv.DictWriter(buf, fieldnames=fields)
            writer.writeheader()
            writer.writerows(job.rows)
            return Response(
                buf.getvalue(),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="gendetect-{job_id}.csv"'},
            )
        raise HTTPException(400, "format must be json or csv")

    return app


def _package_version() -> str:
    from gendetect import __version__

    return __version__


__all__ = ["ServerSettings", "card_summary", "create_app"]
