"""Parquet manifests (one row per image, :data:`~gendetect.data.records.SCHEMA`) and their summaries.

A manifest's schema metadata (key ``gendetect``) holds a JSON provenance block: library versions and time, what the
caller passed (root folder, layout, ...) and counts of the records. :func:`describe` counts images by label,
generator, format, size and JPEG quality and warns about confounds a detector could learn instead of generator
traces, such as "every fake is a PNG and every real a JPEG".

Example:
    >>> from gendetect.data.records import ImageRecord
    >>> records = [ImageRecord("/d/a.jpg", "real", "real", format="JPEG", width=512, height=512),
    ...            ImageRecord("/d/b.png", "fake", "sd-1.5", format="PNG", width=512, height=512)]
    >>> describe(records)["warnings"][0][:50]
    'file format: all reals are JPEG and all fakes are '
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gendetect.atomic import atomic_path
from gendetect.data.records import SCHEMA, ImageRecord
from gendetect.errors import DataSchemaError
from gendetect.provenance import provenance

METADATA_KEY = b"gendetect"  # schema-metadata key of the JSON provenance block


# -- Parquet I/O -----------------------------------------------------------------------------------------------
def _counts(records: Sequence[ImageRecord]) -> dict[str, Any]:
    return {
        "n_records": len(records),
        "n_errors": sum(r.status != "ok" for r in records),
        "labels": dict(Counter(r.label for r in records)),
        "generators": dict(Counter(str(r.generator) for r in records if r.label == "fake")),
    }


def write_manifest(
    records: Sequence[ImageRecord], path: str | os.PathLike, *, metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``records`` to a Parquet manifest, with provenance in its schema metadata.

    The metadata block is :func:`~gendetect.provenance.provenance` (time, versions), then ``metadata``, then the
    counts ``n_records``, ``n_errors``, ``labels`` and ``generators`` (fakes per generator). The file is written
    to a temporary name and renamed, so a crash never leaves a half-written manifest.

    Args:
        records: the rows.
        path: the ``.parquet`` file to write (folders are created).
        metadata: JSON-serialisable facts to store with it, such as ``{"root": ..., "layout": ...}``.

    Returns:
        ``path``.

    Raises:
        DataSchemaError: a record has a value of the wrong type for :data:`~gendetect.data.records.SCHEMA`.
    """
    path = Path(path)
    try:
        table = pa.Table.from_pylist([r.to_row() for r in records], schema=SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as e:
        raise DataSchemaError(f"records do not fit the manifest schema: {e}") from e
    meta = {**provenance(kind="manifest"), **(metadata or {}), **_counts(records)}
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(meta, default=str).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def _read_table(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise DataSchemaError(f"{path} is not a readable Parquet manifest: {e}") from e


def read_manifest(path: str | os.PathLike) -> list[ImageRecord]:
    """The records of a Parquet manifest.

    Columns beyond :data:`~gendetect.data.records.SCHEMA` are kept in each record's ``extra``. Relative paths are
    resolved against the manifest's folder (or against an absolute ``root`` in its metadata).

    Raises:
        DataSchemaError: the file is not Parquet, has no ``path`` column, or holds an unknown label.
    """
    path = Path(path)
    table = _read_table(path)
    if "path" not in table.column_names:
        raise DataSchemaError(f"{path} has no 'path' column; columns: {', '.join(table.column_names)}")
    root = _metadata(table.schema, path).get("root")
    base = Path(root) if isinstance(root, str) and Path(root).is_absolute() else path.parent
    records = []
    for n, row in enumerate(table.to_pylist(), 1):
        try:
            rec = ImageRecord.from_row(row)
        except DataSchemaError as e:
            raise DataSchemaError(f"{path}: row {n}: {e}") from e
        if rec.path and not Path(rec.path).is_absolute():
            rec.path = os.path.abspath(base / rec.path)
        records.append(rec)
    return records


def _metadata(schema: pa.Schema, path: Path) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataSchemaError(f"{path}: the gendetect metadata block is not valid JSON: {e}") from e
    return meta if isinstance(meta, dict) else {}


def read_manifest_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance block stored in a manifest; empty when gendetect did not write it."""
    path = Path(path)
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise DataSchemaError(f"{path} is not a readable Parquet manifest: {e}") from e
    return _metadata(schema, path)


# -- summaries -------------------------------------------------------------------------------------------------
_SIZE_BUCKETS = (  # long side in pixels: [lo, hi)
    (0, 256, "<256"),
    (256, 512, "256-511"),
    (512, 1024, "512-1023"),
    (1024, 2048, "1024-2047"),
    (2048, 4096, "2048-4095"),
    (4096, 2**31, ">=4096"),
)
# confounds are flagged when real and fake distributions differ by at least this total-variation distance (0..1)
_CONFOUND_TV = 0.5


def _size_bucket(rec: ImageRecord) -> str:
    if not rec.width or not rec.height:
        return "unknown"
    side = max(rec.width, rec.height)
    return next(name for lo, hi, name in _SIZE_BUCKETS if lo <= side < hi)


def describe(records: Sequence[ImageRecord]) -> dict[str, Any]:
    """A JSON-serialisable summary of ``records``, with warnings about real/fake confounds.

    Returns:
        ``n_images``, ``n_errors``, ``labels`` (label -> count), ``errors`` (label -> unreadable files), then per
        label (label -> value -> count): ``generators``, ``sources``, ``splits``, and over readable files
        ``formats``, ``modes``, ``sizes`` (long-side buckets), ``exif`` ("yes"/"no"); ``jpeg_quality``
        (label -> ``n``, ``min``, ``median``, ``mean``, ``max`` of the JPEGs); ``warnings``: a list of sentences
        (:func:`confound_warnings`).
    """
    by_label: dict[str, list[ImageRecord]] = {}
    for r in records:
        by_label.setdefault(r.label, []).append(r)

    def counts(key: Callable[[ImageRecord], Any], readable: bool = False) -> dict[str, dict[str, int]]:
        out = {}
        for label, recs in by_label.items():
            values = Counter(str(key(r)) for r in recs if r.status == "ok" or not readable)
            if values:
                out[label] = dict(values.most_common())
        return out

    quality = {}
    for label, recs in by_label.items():
        q = [r.jpeg_quality for r in recs if r.jpeg_quality is not None and r.status == "ok"]
        if q:
            quality[label] = {
                "n": len(q),
                "min": int(min(q)),
                "median": float(np.median(q)),
                "mean": round(float(np.mean(q)), 2),
                "max": int(max(q)),
            }
    return {
        "n_images": len(records),
        "n_errors": sum(r.status != "ok" for r in records),
        "labels": dict(Counter(r.label for r in records)),
        "errors": {k: n for k, recs in by_label.items() if (n := sum(r.status != "ok" for r in recs))},
        "generators": counts(lambda r: r.generator),
        "sources": counts(lambda r: r.source),
        "splits": counts(lambda r: r.split),
        "formats": counts(lambda r: r.format, readable=True),
        "modes": counts(lambda r: r.mode, readable=True),
        "sizes": counts(_size_bucket, readable=True),
        "exif": counts(lambda r: "unknown" if r.has_exif is None else "yes" if r.has_exif else "no", readable=True),
        "jpeg_quality": quality,
        "warnings": confound_warnings(records),
    }


def _shares(recs: Sequence[ImageRecord], key: Callable[[ImageRecord], Any]) -> dict[Any, float]:
    counts = Counter(key(r) for r in recs)
    return {k: v / len(recs) for k, v in counts.items()}


def _tv_distance(a: dict[Any, float], b: dict[Any, float]) -> float:
    """Total-variation distance between two discrete distributions: 0 alike, 1 disjoint."""
    return 0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in a.keys() | b.keys())


def _spell(shares: dict[Any, float], label: str) -> str:
    if len(shares) == 1:
        return f"all {label}s are {next(iter(shares))}"
    top = sorted(shares.items(), key=lambda kv: -kv[1])[:3]
    return f"{label}s are " + ", ".join(f"{100 * s:.0f}% {k}" for k, s in top)


# distribution shifts (two-sample Kolmogorov-Smirnov) are flagged at this statistic, when also significant
_CONFOUND_KS = 0.3
_CONFOUND_KS_P = 0.01


def _pixels(recs: Sequence[ImageRecord]) -> list[int]:
    return [int(r.width or 0) * int(r.height or 0) for r in recs]


def _ks_differs(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The KS statistic of samples ``a`` and ``b`` when their distributions clearly differ, else None."""
    if len(a) < 5 or len(b) < 5:
        return None
    from scipy.stats import ks_2samp

    res = ks_2samp(np.asarray(a, float), np.asarray(b, float))
    return float(res.statistic) if res.statistic >= _CONFOUND_KS and res.pvalue < _CONFOUND_KS_P else None


def confound_warnings(records: Sequence[ImageRecord]) -> list[str]:
    """Ways the readable real and fake images differ other than by content, one sentence each.

    Checks the file format, colour mode (an alpha channel), exact and overall image size (and the distribution of
    pixel counts), JPEG quality (medians, and the distribution by a two-sample KS test) and EXIF metadata; also
    reports unreadable files. A detector trained on such data can score well by learning the
    difference ("PNG means fake") instead of generator traces; re-encode, resize or strip both classes alike, or
    evaluate within matched subsets.
    """
    warnings: list[str] = []
    n_errors = sum(r.status != "ok" for r in records)
    if n_errors:
        warnings.append(f"{n_errors} of {len(records)} files could not be read (status 'error'; see their 'error')")
    real = [r for r in records if r.label == "real" and r.status == "ok"]
    fake = [r for r in records if r.label == "fake" and r.status == "ok"]
    if not real or not fake:
        return warnings

    for what, key, lesson in (
        ("file format", lambda r: r.format, "the file format"),
        ("colour mode", lambda r: r.mode, "the colour mode (e.g. an alpha channel)"),
    ):
        a, b = _shares(real, key), _shares(fake, key)
        if _tv_distance(a, b) >= _CONFOUND_TV:
            warnings.append(
                f"{what}: {_spell(a, 'real')} and {_spell(b, 'fake')}; a detector can learn {lesson} instead of "
                "generator traces (convert both alike)"
            )

    sized_r = [r for r in real if r.width and r.height]
    sized_f = [r for r in fake if r.width and r.height]
    if sized_r and sized_f:
        dims_r = _shares(sized_r, lambda r: (r.width, r.height))
        dims_f = _shares(sized_f, lambda r: (r.width, r.height))
        for who, mine, whom, other in (("fakes", dims_f, "reals", dims_r), ("reals", dims_r, "fakes", dims_f)):
            (w, h), share = max(mine.items(), key=lambda kv: kv[1])  # the commonest exact size of this class
            elsewhere = other.get((w, h), 0.0)
            if share - elsewhere >= _CONFOUND_TV:
                warnings.append(
                    f"image size: {100 * share:.0f}% of {who} but {100 * elsewhere:.0f}% of {whom} are exactly "
                    f"{w}×{h}; a detector can learn the size (crop or resize both alike)"
                )
                break
        mr = float(np.median([max(r.width, r.height) for r in sized_r]))
        mf = float(np.median([max(r.width, r.height) for r in sized_f]))
        if max(mr, mf) / max(min(mr, mf), 1.0) >= 1.5:
            warnings.append(
                f"resolution: the median long side is {mr:.0f} px for reals and {mf:.0f} px for fakes; resolution "
                "and resampling traces can give the class away"
            )
        elif (ks := _ks_differs(_pixels(sized_r), _pixels(sized_f))) is not None:
            warnings.append(
                f"image size: the pixel counts of reals and fakes are distributed differently (KS D={ks:.2f}); "
                "a detector can learn the size (crop or resize both alike, e.g. --match-real-format)"
            )

    qr = [r.jpeg_quality for r in real if r.jpeg_quality is not None]
    qf = [r.jpeg_quality for r in fake if r.jpeg_quality is not None]
    if qr and qf and abs(float(np.median(qr)) - float(np.median(qf))) >= 10:
        warnings.append(
            f"JPEG quality: the median is {np.median(qr):.0f} for real JPEGs and {np.median(qf):.0f} for fake ones; "
            "compression strength can give the class away (re-encode both alike)"
        )
    elif qr and qf and (ks := _ks_differs(qr, qf)) is not None:
        warnings.append(
            f"JPEG quality: real and fake JPEGs have differently distributed qualities (KS D={ks:.2f}, medians "
            f"{np.median(qr):.0f} and {np.median(qf):.0f}); compression strength can give the class away"
        )

    er = sum(bool(r.has_exif) for r in real) / len(real)
    ef = sum(bool(r.has_exif) for r in fake) / len(fake)
    if abs(er - ef) >= _CONFOUND_TV:
        warnings.append(
            f"metadata: {100 * er:.0f}% of reals but {100 * ef:.0f}% of fakes carry EXIF; a detector reading files "
            "(not pixels) can learn it"
        )
    return warnings
