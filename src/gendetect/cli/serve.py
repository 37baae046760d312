"""``gendetect serve``: the HTTP API and web page."""

from __future__ import annotations

from pathlib import Path

import click

from gendetect.cli import main
from gendetect.cli._common import err_console, handle_errors
from gendetect.limits import DEFAULT_MAX_PIXELS

SERVER_MODULES = ("python_multipart", "sqlalchemy")
"""What the server imports from the 'serve' extra without a guard of its own (its uploads and result store)."""


@main.command()
@click.option("-m", "--model", default=None, help="Model directory. Default: the embedded one.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 exposes it).")
@click.option("--port", default=8000, show_default=True)
@click.option(
    "--token",
    envvar="GENDETECT_TOKEN",
    default=None,
    help="Require 'Authorization: Bearer TOKEN' on the API (env GENDETECT_TOKEN).",
)
@click.option(
    "--db",
    "db_url",
    default=None,
    help="Result store URL (default SQLite in the cache dir; postgresql+psycopg://... for teams).",
)
@click.option(
    "--allow-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder that background jobs may read; jobs are disabled without it.",
)
@click.option("--max-upload-mb", default=25, show_default=True, help="Per-file upload limit.")
@click.option("--max-pixels", default=DEFAULT_MAX_PIXELS, show_default=True, help="Per-image pixel limit.")
@click.option("--max-batch", default=32, show_default=True, help="Files per /v1/detect request.")
@click.option("--max-request-mb", default=100, show_default=True, help="Per /v1/detect request, all files.")
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="Host name the server may be reached as without a token, besides localhost and --host (repeatable).",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="Origin (https://app.example) whose pages may POST to the API; '*' for any (repeatable).",
)
@click.option("--job-workers", default=1, show_default=True, help="Threads running background jobs.")
@click.option("--max-jobs", default=16, show_default=True, help="Jobs queued or running at once; more get 429.")
@click.option("--job-retention-days", default=7.0, show_default=True, help="Finished jobs are deleted after this.")
@handle_errors
def serve(
    model: str | None,
    host: str,
    port: int,
    token: str | None,
    db_url: str | None,
    allow_root: Path | None,
    max_upload_mb: int,
    max_pixels: int,
    max_batch: int,
    max_request_mb: int,
    allowed_hosts: tuple[str, ...],
    cors_origins: tuple[str, ...],
    job_workers: int,
    max_jobs: int,
    job_retention_days: float,
) -> None:
    """Run the HTTP API and web page (needs the 'serve' extra). Open http://HOST:PORT/ in a browser."""
    from gendetect.errors import require

    uvicorn = require("uvicorn", "serve", "gendetect serve")
    for module in SERVER_MODULES:  # a missing one is then one message, not a traceback from deep in the server
        require(module, "serve", "gendetect serve")
    from gendetect.server.app import ServerSettings, create_app  # MissingDependencyError without fastapi
    from gendetect.server.security import is_loopback

    settings = ServerSettings(
        token=token,
        db_url=db_url,
        allow_root=allow_root,
        max_upload_bytes=max_upload_mb * 2**20,
        max_request_bytes=max_request_mb * 2**20,
        max_pixels=max_pixels,
        max_batch=max_batch,
        bind_host=host,
        allowed_hosts=allowed_hosts,
        cors_origins=cors_origins,
        job_workers=job_workers,
        max_active_jobs=max_jobs,
        job_retention_s=job_retention_days * 86400,
    )
    app = create_app(model, settings)
    err_console.print(
        f"gendetect serving {app.state.pipeline.name} on http://{host}:{port}/ "
        f"(API docs at /docs{', token required' if token else ''})",
        highlight=False,
    )
    if token is None and not is_loopback(host):
        err_console.print(
            f"[bold red]WARNING: serving on {host} without a token: anyone who can reach it can upload images and "
            "start jobs.[/] Set --token (or GENDETECT_TOKEN). Without a token only the Host names localhost, "
            f"127.0.0.1, [::1]{'' if host in ('0.0.0.0', '::') else ', ' + host} and --allowed-host are answered.",
            highlight=False,
        )
    uvicorn.run(app, host=host, port=port, log_level="info")
