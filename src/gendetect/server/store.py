"""Result store: one row per (image sha256, model version), so a second upload is answered without rescoring.

SQLite (embedded, the default) and PostgreSQL go through the same SQLAlchemy Core code; pick one with a URL:
``sqlite:///results.sqlite`` or ``postgresql+psycopg://user@host/db``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Column, DateTime, Float, Integer, MetaData, String, Table, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

metadata = MetaData()
results = Table(
    "results",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("model_version", String(128), primary_key=True),
    Column("p_fake", Float, nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("format", String(16)),
    Column("width", Integer),
    Column("height", Integer),
    Column("filename", String(512)),
    Column("created", DateTime(timezone=True), nullable=False),
)

_FIELDS = ("p_fake", "verdict", "threshold", "format", "width", "height", "filename")


def default_db_url() -> str:
    cache = Path(os.environ.get("GENDETECT_CACHE") or Path.home() / ".cache" / "gendetect")
    cache.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{cache / 'results.sqlite'}"


class ResultStore:
    """Get and put scan results keyed by ``(sha256, model_version)``."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_db_url()
        kwargs: dict[str, Any] = {"future": True}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
        self.engine: Engine = create_engine(self.url, **kwargs)
        metadata.create_all(self.engine)

    def get(self, sha256: str, model_version: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(results).where(results.c.sha256 == sha256, results.c.model_version == model_version)
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def put(self, sha256: str, model_version: str, result: dict[str, Any]) -> None:
        values = {k: result.get(k) for k in _FIELDS}
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    results.insert().values(
                        sha256=sha256, model_version=model_version, created=dt.datetime.now(dt.timezone.utc), **values
                    )
                )
        except IntegrityError:  # the same image scored concurrently: the first result stays
            pass

    def count(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(results.c.sha256)).all())
