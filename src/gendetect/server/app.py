"""The HTTP service: ``create_app(model)`` returns a FastAPI app that loads the model once.

Endpoints (OpenAPI docs at ``/docs``, served from local files: they work offline):

* ``GET /`` the web page; ``GET /healthz``;
* ``GET /v1/models``: the model, its version, threshold, card summary and limits;
* ``POST /v1/detect``: one or several uploaded images (multipart field ``files``, or ``file``) -> score, verdict,
  threshold, model, version, sha256;
* ``POST /v1/jobs``: server-side paths under ``allow_root``, scored in the background by a bounded pool and kept
  in the result store; ``GET /v1/jobs/{id}`` progress; ``GET /v1/jobs/{id}/results?format=json|csv``.

Limits, checked as early as they can be (see :mod:`gendetect.server.security` for the Host, origin and token
rules, which run before any body is read):

* ``Content-Length`` above ``max_request_bytes`` (``/v1/detect``) or 1 MiB (other routes): 413 before reading;
* while the multipart body streams in: at most ``max_batch`` files, each kept in memory up to
  ``max_upload_bytes`` (a larger one is reported per item with 413), ``max_request_bytes`` in all; nothing is
  written to disk;
* at most ``max_inflight`` uploads are read and scored at once; others wait before their body is read, so upload
  memory stays below ``max_inflight x max_request_bytes``.

Every bad input gets a 4xx with a message; scoring errors of one image in a batch are reported per item.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from gendetect.errors import GendetectError, ImageLoadError, require
from gendetect.imageio import DEFAULT_MAX_PIXELS
from gendetect.pipeline import DetectionPipeline, ScanRow, fuse_evidence, load_model, scan, scan_columns

require("fastapi", "serve", "the HTTP service")  # one clear error, naming the extra, before the imports below
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from gendetect.server.jobs import JobManager, PathRefused, QueueFull, plan_inputs
from gendetect.server.security import GuardConfig, RequestGuard, allowed_host_set, is_loopback, normalise_origin
from gendetect.server.store import ResultStore
from gendetect.server.uploads import Upload, UploadError, UploadLimits, read_uploads

logger = logging.getLogger(__name__)

UPLOAD_ROUTES = ("/v1/detect", "/v1/explain")  # multipart uploads: body limit max_request_bytes
SMALL_BODY_BYTES = 2**20  # the body limit of every other route (job requests are JSON lists of paths)


@dataclass
class ServerSettings:
    """Limits and options of the service."""

    token: str | None = None  # require "Authorization: Bearer <token>" on /v1/* when set
    db_url: str | None = None  # result store; None: SQLite under GENDETECT_CACHE or ~/.cache/gendetect
    allow_root: Path | None = None  # jobs may only read below this folder; None disables jobs
    max_upload_bytes: int = 25 * 2**20  # per file
    max_request_bytes: int = 100 * 2**20  # per /v1/detect request, all files together
    max_pixels: int = DEFAULT_MAX_PIXELS  # per image, checked from the header before decoding
    max_batch: int = 32  # files per /v1/detect request
    max_inflight: int = 4  # /v1/detect requests read and scored at once; more wait before their body is read
    max_job_files: int = 100_000
    job_workers: int = 1  # threads running jobs (one job each)
    max_active_jobs: int = 16  # queued + running jobs; one more gets 429
    job_retention_s: float = 7 * 86400  # finished jobs are deleted after this long
    max_kept_jobs: int = 1000  # and beyond this many
    use_store: bool = True  # answer repeated uploads from the result store
    evidence: bool = True  # read what each upload says about its origin (gendetect.evidence) and fuse it in
    bind_host: str | None = "127.0.0.1"  # the address served; names it accepts in Host when there is no token
    allowed_hosts: tuple[str, ...] = ()  # more Host names accepted without a token (--allowed-host)
    cors_origins: tuple[str, ...] = ()  # origins allowed to POST from a browser (--cors-origin), "*" for any


class JobRequest(BaseModel):
    """Server-side inputs for a background job: files or folders below the allowed root."""

    paths: list[str] = Field(description="files or folders, relative to the allowed root (or absolute inside it)")
    recursive: bool = True


# -- response models (they document the JSON in the OpenAPI spec at /openapi.json) -------------------------------
class Health(BaseModel):
    status: Literal["ok"]
    model: str
    version: str


class ModelLimits(BaseModel):
    model_config = ConfigDict(extra="allow")
    max_upload_bytes: int
    max_request_bytes: int
    max_pixels: int
    max_batch: int


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    version: str
    threshold: float
    uncertain_from: float | None = None
    extractor: dict[str, Any]
    detector: str
    card: dict[str, Any] = Field(description="training data, false-positive rate, calibration, audit warnings")
    limits: ModelLimits


class DetectItem(BaseModel):
    """One uploaded file's result; ``status`` says whether it was scored (other fields may be added)."""

    model_config = ConfigDict(extra="allow")
    filename: str | None = None
    status: Literal["ok", "error"]
    error: str | None = Field(None, description="why the file was not scored (status 'error')")
    p_fake: float | None = Field(None, description="P(fake), or the detector's score when not calibrated")
    verdict: str | None = Field(None, description="'fake', 'uncertain' or 'real' (after the evidence policy)")
    verdict_source: str | None = Field(None, description="what decided the verdict: 'pixels' or file evidence")
    reason: str | None = Field(None, description="why the verdict is 'uncertain' without a score (no signal)")
    findings: list[dict[str, Any]] | None = Field(None, description="what the file says about its origin")
    threshold: float | None = None
    sha256: str | None = None
    model: str | None = None
    version: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    cached: bool | None = Field(None, description="answered from the result store")


class DetectResponse(BaseModel):
    model: str
    version: str
    results: list[DetectItem]


class JobSummary(BaseModel):
    id: str
    status: Literal["queued", "running", "finished", "failed"]
    done: int
    total: int
    counts: dict[str, int] = Field(description="rows per verdict, 'error' for rows without a score")
    error: str | None = None
    created: str | None = None
    finished: str | None = None
    results: str = Field(description="where the rows are: add ?format=csv for CSV")


class JobResults(JobSummary):
    rows: list[dict[str, Any]] = Field(description="one row per input, paths relative to the allowed root")


def card_summary(pipeline: DetectionPipeline) -> dict[str, Any]:
    """What a person should know before trusting a verdict: training data, false-positive rate, whether P(fake) is
    calibrated, and the warnings of the shortcut audit run on its training data."""
    from gendetect.evaluation.audit import audit_warnings

    info = pipeline.info
    training = info.get("training", {})
    rule = info.get("threshold_rule", {})
    stored = info.get("validation", {})
    validation = stored.get("all", {})
    fpr = None if validation.get("acc_real") is None else 1.0 - validation["acc_real"]
    families = stored.get("per_family", {})  # the default-model script's leave-one-family-out figures
    return {
        "trained_on": training.get("data") or _data_words(training),
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
            for g, m in {**stored, **families}.items()
            if isinstance(m, dict) and "auc" in m
        },
        # leave-one-family-out (the default model's selection): each family scored by a fit that never saw it
        "validation_mean_family_auc": stored.get("mean_family_auc", validation.get("mean_family_auc")),
        "validation_worst_chain_fpr": stored.get("worst_chain_fpr_held_out_fold"),
        "threshold_rule": rule.get("rule"),
        # without a calibrator P(fake) is the detector's score: the page must not call it a probability
        "calibrated": pipeline.calibrator is not None,
        "audit_warnings": audit_warnings(info.get("audit")),
    }


def _data_words(training: dict[str, Any]) -> str | None:
    """"N real and M generated images from K generator families" from a card's ``images_per_family`` (the
    default-model script's training summary), or None when the card has none."""
    per = training.get("images_per_family")
    if not per:
        return None
    fakes = {f: n for f, n in per.items() if f != "real"}
    words = (f"{per.get('real', 0)} real and {sum(fakes.values())} generated images from {len(fakes)} generator "
             "families, for training and validation (the model card says which are in the training rows")
    licences = sorted(
        {lic for lics in (training.get("licences_per_family") or {}).values() for lic in lics if lic != "unknown"}
    )
    if licences:
        words += f", and each family's licences); licences of the files: {', '.join(licences)}"
        return words
    return words + ")"


class UploadScorer:
    """The work ``/v1/detect`` does for uploaded files, minus HTTP: the endpoint calls it, and so does the
    in-process baseline of ``benchmarks/serve_load.py``, so that both measure the same work.

    The uploads of a request are scored as one batch through :func:`gendetect.pipeline.scan` (the scoring path of
    every scan: same decoding, same no-signal guard, same evidence fusion), except those the result store already
    holds. A stored answer is the same item a fresh scan gives (its pixel fields are stored, the file's evidence is
    read again, ``cached`` is True), and only for an image within this server's pixel limit: one above it is
    passed to the scan, which refuses it as it would a new upload. Each result item is the upload's
    :class:`~gendetect.pipeline.ScanRow` with ``filename`` for ``path``, plus ``version`` and ``cached``; an error
    item also carries ``http_status`` for a single-file request.
    """

    def __init__(self, pipeline: DetectionPipeline, settings: ServerSettings, store: ResultStore | None = None) -> None:
        self.pipeline, self.settings = pipeline, settings
        self.store = store if settings.use_store else None
        self.version = pipeline.version

    def score_upload(self, up: Upload) -> dict[str, Any]:
        """The result item for one upload."""
        return self.score_uploads([up])[0]

    def score_uploads(self, uploads: Sequence[Upload]) -> list[dict[str, Any]]:
        """One result item per upload, in order; the ones not answered from the store are scored as one batch."""
        pipeline, store, version = self.pipeline, self.store, self.version
        out: list[dict[str, Any] | None] = [None] * len(uploads)
        todo: list[tuple[int, bytes, str]] = []
        limit = self.settings.max_upload_bytes
        for i, up in enumerate(uploads):
            if up.too_large:
                error = f"file of {up.size} bytes is larger than the {_size(limit)} upload limit"
                out[i] = self._error_item(up.filename, 413, error)
                continue
            if not up.data:
                out[i] = self._error_item(up.filename, 400, "empty file")
                continue
            data = bytes(up.data)
            sha = hashlib.sha256(data).hexdigest()
            hit = store.get(sha, version) if store is not None else None
            if hit is None or not self._within_limits(hit):  # over the limit: the scan refuses it, as it would fresh
                todo.append((i, data, sha))
                continue
            row = ScanRow.from_dict({**hit, "path": up.filename or ""})
            row.sha256 = sha
            row.stamp(pipeline)
            fuse_evidence(row, data, self.settings.evidence, self.settings.max_pixels)
            out[i] = self._item(row, up.filename, cached=True)
        rows = scan(
            [data for _, data, _ in todo],
            pipeline,
            max_pixels=self.settings.max_pixels,
            evidence=self.settings.evidence,
        )
        for (i, _, sha), row in zip(todo, rows):
            name = uploads[i].filename
            if row.status != "ok":
                out[i] = self._error_item(name, 422, str(row.error).removeprefix("<bytes>: "), row)
                continue
            if store is not None and row.p_fake is not None:  # the pixel verdict; the evidence is read every time
                store.put(sha, version, _pixel_fields(row, pipeline.verdict(row.p_fake)), filename=name)
            out[i] = self._item(row, name, cached=False)
        return [item for item in out if item is not None]

    def _within_limits(self, stored: dict[str, Any]) -> bool:
        """Whether a stored image passes this server's pixel limit (which may be lower than the one it was scored
        under); the stored size is the header's, after EXIF rotation, so its product is what the decoder checks."""
        width, height = stored.get("width"), stored.get("height")
        return width is not None and height is not None and width * height <= self.settings.max_pixels

    def _item(self, row: ScanRow, filename: str | None, *, cached: bool | None) -> dict[str, Any]:
        d = row.to_dict()
        d.pop("path")
        return {"filename": filename, **d, "version": self.version, "cached": cached}

    def _error_item(self, filename: str | None, status: int, error: str, row: ScanRow | None = None) -> dict[str, Any]:
        if row is None:  # refused before scanning (too large, empty): the keys of a scanned upload's row
            row = ScanRow.problem(filename or "", error)
            row.stamp(self.pipeline).conform(scan_columns(self.pipeline, self.settings.evidence))
        row.status, row.error = "error", error
        return {**self._item(row, filename, cached=None), "http_status": status}


@functools.cache
def _evidence_fields() -> frozenset[str]:
    """The row fields :func:`~gendetect.pipeline.fuse_evidence` sets, besides ``verdict``."""
    from gendetect.evidence import EvidenceReport

    return frozenset(EvidenceReport().row_fields(None)) - {"verdict"}


def _pixel_fields(row: ScanRow, pixel_verdict: str | None) -> dict[str, Any]:
    """What the result store keeps of a scored upload's row: every field but ``path`` and the evidence fields (the
    file is read for evidence again on every upload, under the server's settings of the day), with the pixel
    verdict as ``verdict``. ``ScanRow.from_dict`` of it plus ``path`` gives the row before its evidence was fused."""
    skip = _evidence_fields() | {"path"}
    return {**{k: v for k, v in row.to_dict().items() if k not in skip}, "verdict": pixel_verdict}


def create_app(model: DetectionPipeline | str | None = None, settings: ServerSettings | None = None) -> FastAPI:
    """Build the app; the model is loaded here, once."""
    settings = settings or ServerSettings()
    pipeline = load_model(model)
    version = pipeline.version
    store = ResultStore(settings.db_url)  # jobs always live here; the upload cache only with use_store
    scorer = UploadScorer(pipeline, settings, store)
    manager = (
        JobManager(
            store,
            pipeline,
            settings.allow_root,
            workers=settings.job_workers,
            max_active=settings.max_active_jobs,
            retention_s=settings.job_retention_s,
            max_kept=settings.max_kept_jobs,
            max_pixels=settings.max_pixels,
        )
        if settings.allow_root is not None
        else None
    )
    upload_limits = UploadLimits(
        max_files=settings.max_batch,
        max_file_bytes=settings.max_upload_bytes,
        max_total_bytes=settings.max_request_bytes,
    )
    one_file_limits = UploadLimits(
        max_files=1, max_file_bytes=settings.max_upload_bytes, max_total_bytes=settings.max_request_bytes
    )

    async def receive_uploads(request: Request, limits: UploadLimits) -> list[Upload]:
        """The request's file parts under ``limits``; 4xx when there are none or a limit is broken."""
        if not request.headers.get("content-type"):
            raise HTTPException(422, "no files uploaded; send multipart field 'files' (or 'file')")
        try:
            uploads = await read_uploads(request.headers.get("content-type"), request.stream(), limits)
        except UploadError as e:
            raise HTTPException(e.status, e.detail) from e
        if not uploads:
            raise HTTPException(422, "no files uploaded; send multipart field 'files' (or 'file')")
        return uploads

    sem: dict[str, Any] = {"loop": None, "sem": None}

    def inflight() -> asyncio.Semaphore:
        """The semaphore of the running loop (a TestClient may run each request on a loop of its own)."""
        loop = asyncio.get_running_loop()
        if sem["loop"] is not loop:
            sem["loop"], sem["sem"] = loop, asyncio.Semaphore(max(1, settings.max_inflight))
        return sem["sem"]

    if settings.token is None and settings.bind_host and not is_loopback(settings.bind_host):
        logger.warning(
            "serving on %s without a token: anyone who can reach this address can upload images and start jobs; "
            "set --token (or GENDETECT_TOKEN)",
            settings.bind_host,
        )

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        yield
        if manager is not None:
            await run_in_threadpool(manager.shutdown)

    app = FastAPI(
        title="gendetect",
        version=_package_version(),
        description="Tell real photographs from generated images. Label 'fake' means generated.",
        docs_url=None,  # served below from local files, so that /docs works offline
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.pipeline, app.state.settings, app.state.store, app.state.jobs = pipeline, settings, store, manager
    app.state.scorer = scorer
    _mount_docs(app)

    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
        )

    def body_limit(method: str, path: str) -> int:
        return settings.max_request_bytes if path in UPLOAD_ROUTES else SMALL_BODY_BYTES

    app.add_middleware(
        RequestGuard,
        config=GuardConfig(
            token=settings.token,
            allowed_hosts=allowed_host_set(settings.bind_host, settings.allowed_hosts),
            cors_origins=frozenset("*" if o == "*" else normalise_origin(o) for o in settings.cors_origins),
            body_limit=body_limit,
        ),
    )
    # The guard checks the token before the body is read; this dependency only documents the scheme in OpenAPI.
    auth = [Depends(HTTPBearer(auto_error=False))] if settings.token is not None else []

    @app.exception_handler(GendetectError)
    async def _gendetect_error(request: Request, exc: GendetectError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return (resources.files("gendetect.server") / "static" / "index.html").read_text(encoding="utf-8")

    @app.get("/healthz", response_model=Health)
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": pipeline.name, "version": version}

    @app.get("/v1/models", dependencies=auth, response_model=list[ModelInfo], response_model_exclude_unset=True)
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
                    "max_request_bytes": settings.max_request_bytes,
                    "max_pixels": settings.max_pixels,
                    "max_batch": settings.max_batch,
                },
            }
        ]

    @app.post(
        "/v1/detect",
        dependencies=auth,
        response_model=DetectResponse,
        response_model_exclude_unset=True,
        openapi_extra={"requestBody": _MULTIPART_BODY},
        responses={413: {"description": "too many files, or a body over the size limits"}},
    )
    async def detect(request: Request) -> dict[str, Any]:
        """Score uploaded images: multipart field ``files`` (repeatable) or ``file``.

        One file that cannot be scored gets a 4xx with the reason; in a batch, each item says its own status.
        """
        async with inflight():
            uploads = await receive_uploads(request, upload_limits)
            out = await run_in_threadpool(scorer.score_uploads, uploads)
        if len(out) == 1 and out[0]["status"] == "error":
            raise HTTPException(out[0]["http_status"], f"{out[0]['filename']}: {out[0]['error']}")
        for item in out:
            item.pop("http_status", None)
        return {"model": pipeline.name, "version": version, "results": out}

    @app.post("/v1/explain", dependencies=auth, openapi_extra={"requestBody": _MULTIPART_BODY})
    async def explain_upload(request: Request) -> dict[str, Any]:
        """Why a verdict: the tile score map and residual spectrum (PNG data URLs) and the file's findings."""
        from gendetect.explain import explain

        async with inflight():
            uploads = await receive_uploads(request, one_file_limits)
            up = uploads[0]
            if up.too_large:
                raise HTTPException(413, f"file larger than the {_size(settings.max_upload_bytes)} upload limit")
            if not up.data:
                raise HTTPException(400, "empty file")

            def work() -> dict[str, Any]:
                try:
                    ex = explain(
                        bytes(up.data),
                        pipeline,
                        evidence=settings.evidence,
                        max_pixels=settings.max_pixels,
                        name=up.filename,
                    )
                except ImageLoadError as e:
                    raise HTTPException(422, f"{up.filename}: {str(e).removeprefix('<bytes>: ')}") from e
                return {"model": pipeline.name, "version": version, **ex.to_dict(), "images": ex.images_as_data_urls()}

            return await run_in_threadpool(work)

    def jobs_or_403() -> JobManager:
        if manager is None:
            raise HTTPException(403, "jobs on server-side paths are disabled; start the server with --allow-root DIR")
        return manager

    @app.post(
        "/v1/jobs",
        status_code=202,
        dependencies=auth,
        response_model=JobSummary,
        responses={429: {"description": "too many jobs queued or running; retry later"}},
    )
    def create_job(request: JobRequest) -> dict[str, Any]:
        jobs = jobs_or_403()
        if not request.paths:
            raise HTTPException(400, "no paths given")
        try:
            plan = plan_inputs(request.paths, settings.allow_root, recursive=request.recursive)
        except PathRefused as e:
            raise HTTPException(e.status, e.detail) from e
        if len(plan.files) > settings.max_job_files:
            raise HTTPException(413, f"{len(plan.files)} files; the job limit is {settings.max_job_files}")
        try:
            return jobs.submit(plan)
        except QueueFull as e:
            raise HTTPException(429, f"{e}; retry later", headers={"Retry-After": "10"}) from e

    def job_summary(job_id: str) -> dict[str, Any]:
        summary = manager.summary(job_id) if manager is not None else _stored_summary(store, job_id)
        if summary is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return summary

    def job_rows(job_id: str) -> Iterator[dict[str, Any]]:
        return store.iter_job_rows(job_id)

    @app.get("/v1/jobs/{job_id}", dependencies=auth, response_model=JobSummary)
    def job_status(job_id: str) -> dict[str, Any]:
        return job_summary(job_id)

    @app.get(
        "/v1/jobs/{job_id}/results",
        dependencies=auth,
        responses={
            200: {
                "model": JobResults,
                "content": {"text/csv": {"schema": {"type": "string"}}},
                "description": "the rows as JSON, or as CSV with ?format=csv",
            }
        },
    )
    def job_results(job_id: str, format: str = "json") -> Response:
        if format not in ("json", "csv"):
            raise HTTPException(400, "format must be json or csv")
        summary = job_summary(job_id)
        if format == "json":
            return StreamingResponse(_json_results(summary, job_rows(job_id)), media_type="application/json")
        fields = list(dict.fromkeys(k for r in job_rows(job_id) for k in r)) or ["path"]
        return StreamingResponse(
            _csv_results(fields, job_rows(job_id)),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="gendetect-{job_id}.csv"'},
        )

    return app


_MULTIPART_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "one or more images",
                    },
                    "file": {"type": "string", "format": "binary", "description": "one image (curl -F file=@x.jpg)"},
                },
            }
        }
    },
}


def _stored_summary(store: ResultStore, job_id: str) -> dict[str, Any] | None:
    return JobManager.stored_summary(store, job_id)


def _json_results(summary: dict[str, Any], rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """``{...summary, "rows": [...]}`` written row by row (a large job is never one string in memory)."""
    head = json.dumps(summary)[:-1]
    yield (head + ', "rows": [').encode()
    for i, row in enumerate(rows):
        yield ((", " if i else "") + json.dumps(row, default=str)).encode()
    yield b"]}"


def _csv_results(fields: list[str], rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """The rows as CSV through :class:`gendetect.output.RowWriter` (the scan's writer: cells that a spreadsheet
    would read as a formula get a leading ``'``, non-UTF-8 paths are escaped), sent in pieces of about 64 KiB."""
    from gendetect.output import RowWriter

    buf = io.StringIO()
    with RowWriter(buf, "csv", columns=fields, schema_rows=1) as writer:
        for row in rows:
            writer.write(row)
            if buf.tell() > 64 * 1024:
                yield buf.getvalue().encode("utf-8")
                buf.seek(0)
                buf.truncate()
    yield buf.getvalue().encode("utf-8")


def _mount_docs(app: FastAPI) -> None:
    """``/docs`` from the Swagger UI files packaged in ``fastapi-offline`` (the 'serve' extra), not from a CDN."""
    try:
        import fastapi_offline
    except ImportError:
        logger.warning("fastapi-offline is not installed: /docs is off; pip install 'gendetect[serve]'")
        return
    from starlette.staticfiles import StaticFiles

    static = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/static/docs", StaticFiles(directory=static), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
        )


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n:,} bytes"


def _package_version() -> str:
    from gendetect import __version__

    return __version__


__all__ = ["ServerSettings", "UploadScorer", "card_summary", "create_app"]
