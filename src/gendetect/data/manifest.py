"""Parquet manifests (one row per image, :data:`~gendetect.data.records.SCHEMA`) and their summaries.

The manifest's schema metadata (key ``gendetect``) records what wrote it: versions, time, root, layout, counts.
:func:`describe` counts images by label, generator, format and size and warns about confounds a detector could
learn instead of generator traces, such as "every fake is a PNG and every real a JPEG".
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gendetect.data.records import SCHEMA, ImageRecord
from gendetect.errors import DataSchemaError
from gendetect.provenance import provenance

METADATA_KEY = b"gendetect"


def write_manifest(
    records: Sequence[ImageRecord], path: str | os.PathLike, *, metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``records`` to a Parquet manifest with provenance in its schema metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([r.to_row() for r in records], schema=SCHEMA)
    meta = provenance(
        kind="manifest", n_records=len(records), labels=dict(Counter(r.label for r in records)), **(metadata or {})
    )
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(meta, default=str).encode()})
    pq.write_table(table, path)
    return path


def read_manifest(path: str | os.PathLike) -> list[ImageRecord]:
    """Records of a Parquet manifest (columns beyond the schema are kept in ``extra``)."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise DataSchemaError(f"{path} is not a readable Parquet manifest: {e}") from e
    if "path" not in table.column_names:
        raise DataSchemaError(f"{path} has no 'path' column; columns: {table.column_names}")
    return [ImageRecord.from_row(row) for row in table.to_pylist()]


def read_manifest_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance block stored in a manifest (empty when it was not written by gendetect)."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[METADATA_KEY]) if METADATA_KEY in meta else {}


_SIZE_BUCKETS = (
    (0, 256, "<256"),
    (256, 512, "256-511"),
    (512, 1024, "512-1023"),
    (1024, 2048, "1024-2047"),
    (2048, 10**9, ">=2048"),
)


def _size_bucket(rec: ImageRecord) -> str:
    if not rec.width or not rec.height:
        return "unknown"
    side = max(rec.width, rec.height)
    return next(name for lo, hi, name in _SIZE_BUCKETS if lo <= side < hi)


def describe(records: Sequence[ImageRecord]) -> dict[str, Any]:
    """Counts by label, generator, format, size and JPEG quality, plus warnings about real/fake confounds."""
    by_label: dict[str, list[ImageRecord]] = {}
    for r in records:
        by_label.setdefault(r.label, []).append(r)

    def counts(key) -> dict[str, dict[str, int]]:  # noqa: ANN001
        return {label: dict(Counter(key(r) for r in recs).most_common()) for label, recs in by_label.items()}

    quality = {}
    for label, recs in by_label.items():
        q = [r.jpeg_quality for r in recs if r.jpeg_quality]
        if q:
            quality[label] = {"n": len(q), "min": int(min(q)), "median": float(np.median(q)), "max": int(max(q))}
    summary = {
        "n_images": len(records),
        "n_errors": sum(r.status != "ok" for r in records),
        "labels": dict(Counter(r.label for r in records)),
        "generators": counts(lambda r: str(r.generator)),
        "sources": counts(lambda r: str(r.source)),
        "splits": counts(lambda r: str(r.split)),
        "formats": counts(lambda r: str(r.format)),
        "sizes": counts(_size_bucket),
        "jpeg_quality": quality,
    }
    summary["warnings"] = confound_warnings(records)
    return summary


def confound_warnings(records: Sequence[ImageRecord]) -> list[str]:
    """Ways real and fake images differ other than by content: format, size, JPEG quality, EXIF."""
    real = [r for r in records if r.label == "real" and r.status == "ok"]
    fake = [r for r in records if r.label == "fake" and r.status == "ok"]
    if not real or not fake:
        return []
    warnings: list[str] = []

    def share(recs: list[ImageRecord], pred) -> float:  # noqa: ANN001
        return sum(bool(pred(r)) for r in recs) / len(recs)

    for fmt in sorted({r.format for r in real + fake if r.format}):
        a, b = share(real, lambda r, f=fmt: r.format == f), share(fake, lambda r, f=fmt: r.format == f)
        if abs(a - b) >= 0.5:
            warnings.append(
                f"format confound: {100 * a:.0f}% of reals but {100 * b:.0f}% of fakes are {fmt}; a detector can "
                "learn the file format instead of generator traces (re-encode both alike)"
            )
    sides_r = [max(r.width, r.height) for r in real if r.width and r.height]
    sides_f = [max(r.width, r.height) for r in fake if r.width and r.height]
    if sides_r and sides_f:
        mr, mf = float(np.median(sides_r)), float(np.median(sides_f))
        if max(mr, mf) / max(min(mr, mf), 1) >= 1.5:
            warnings.append(f"size confound: median long side is {mr:.0f} px for reals and {mf:.0f} px for fakes")
    qr = [r.jpeg_quality for r in real if r.jpeg_quality]
    qf = [r.jpeg_quality for r in fake if r.jpeg_quality]
    if qr and qf and abs(float(np.median(qr)) - float(np.median(qf))) >= 10:
        warnings.append(
            f"JPEG quality confound: median quality {np.median(qr):.0f} for reals, {np.median(qf):.0f} for fakes"
        )
    er, ef = share(real, lambda r: r.has_exif), share(fake, lambda r: r.has_exif)
    if abs(er - ef) >= 0.5:
        warnings.append(f"metadata confound: {100 * er:.0f}% of reals but {100 * ef:.0f}% of fakes carry EXIF")
    return warnings


def print_description(summary: dict[str, Any], console: Any) -> None:
    """Render :func:`describe`'s summary as rich tables on ``console``."""
    from rich.table import Table

    console.print(
        f"[bold]{summary['n_images']}[/bold] images ({summary['n_errors']} unreadable): "
        + ", ".join(f"{k} {v}" for k, v in summary["labels"].items()),
        highlight=False,
    )
    for key, title in (
        ("generators", "generator"),
        ("sources", "source"),
        ("splits", "split"),
        ("formats", "format"),
        ("sizes", "long side (px)"),
    ):
        per_label = summary[key]
        labels = sorted(per_label)
        values = sorted({v for counts in per_label.values() for v in counts})
        if key == "splits" and values == ["None"]:
            continue
        table = Table(title=f"by {title}", show_edge=False, title_justify="left")
        table.add_column(title)
        for label in labels:
            table.add_column(label, justify="right")
        for v in values:
            table.add_row(v, *[str(per_label[label].get(v, "")) for label in labels])
        console.print(table)
    for label, q in summary["jpeg_quality"].items():
        console.print(
            f"JPEG quality of {label}: median {q['median']:.0f} (min {q['min']}, max {q['max']}, n {q['n']})",
            highlight=False,
        )
    for w in summary["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
