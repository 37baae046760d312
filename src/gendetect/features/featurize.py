"""Records -> feature vectors, through the shared feature loop and (optionally) the feature store.

``featurize`` is what training and every evaluation protocol call to turn labelled records into an ``(N, dim)``
array; it keeps the records it could not read, with the reason, instead of dropping them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gendetect.data.records import ImageRecord
from gendetect.features.base import FeatureExtractor
from gendetect.features.extract import extract_features
from gendetect.features.store import FeatureStore
from gendetect.imageio import DEFAULT_MAX_PIXELS

logger = logging.getLogger(__name__)

Progress = Callable[[Any, int], Any]


def featurize(
    records: Sequence[ImageRecord],
    extractor: FeatureExtractor,
    *,
    jobs: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    store: FeatureStore | None = None,
    shard_size: int = 512,
) -> tuple[np.ndarray, list[ImageRecord], list[ImageRecord]]:
    """Features of the readable records: ``(X (N, dim) float32, kept records, failed records)``.

    A record that cannot be read or decoded is returned in ``failed`` with ``status="error"`` and the reason, so
    callers can report it; it is never silently dropped. With a :class:`~gendetect.features.store.FeatureStore`,
    features of records whose sha256 is stored are read from it, and the rest are extracted in shards of
    ``shard_size`` and stored as each shard completes (a killed run loses at most one shard of work).
    """
    todo = [r for r in records if r.status == "ok"]
    failed = [r for r in records if r.status != "ok"]
    X = np.full((len(todo), extractor.dim), np.nan, np.float32)
    ok = np.zeros(len(todo), bool)
    keys = [store_key(r, extractor) for r in todo]
    captions = [r.caption for r in todo] if extractor.uses_captions else None
    if store is not None:
        X[:], ok[:] = store.get(keys)
    need = np.flatnonzero(~ok)
    step = shard_size if store is not None else max(len(need), 1)
    for start in range(0, len(need), step):
        idx = need[start : start + step]
        Xc, items = extract_features(
            [todo[i].path for i in idx],
            extractor,
            jobs=jobs,
            max_pixels=max_pixels,
            progress=progress,
            captions=[captions[i] for i in idx] if captions is not None else None,
        )
        good = np.array([it.ok for it in items], dtype=bool)
        X[idx[good]], ok[idx[good]] = Xc[good], True
        for i, item in zip(idx, items):
            if not item.ok:
                todo[i].status, todo[i].error = "error", item.error
                failed.append(todo[i])
        if store is not None:
            store.add([keys[i] for i in idx[good]], Xc[good], [todo[i].path for i in idx[good]])
    kept = [r for r, good in zip(todo, ok) if good]
    if failed:
        logger.warning(
            "%d of %d images could not be used: e.g. %s: %s", len(failed), len(records), failed[0].path, failed[0].error
        )
    return X[ok], kept, failed


def store_key(record: ImageRecord, extractor: FeatureExtractor) -> str | None:
    """The feature-store key of a record: its sha256, plus a hash of its caption for caption-aware extractors."""
    if not record.sha256:
        return None
    if not extractor.uses_captions:
        return record.sha256
    return f"{record.sha256}:{hashlib.sha256((record.caption or '').encode()).hexdigest()[:16]}"


__all__ = ["Progress", "featurize", "store_key"]
