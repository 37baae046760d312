"""Helpers over labelled records: the labelled subset, the 0/1 targets and a summary of what a set holds."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from gendetect.data.records import ImageRecord, label_to_int


def labelled(records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """The records with a real/fake label."""
    return [r for r in records if r.label in ("real", "fake")]


def targets(records: Sequence[ImageRecord]) -> np.ndarray:
    """``(N,)`` int64: 1 = fake, 0 = real."""
    return np.array([label_to_int(r.label) for r in records], dtype=np.int64)


def data_summary(records: Sequence[ImageRecord], failed: Sequence[ImageRecord] = ()) -> dict[str, Any]:
    """What a model was trained on: counts by label, generator, source, format, and a fingerprint of the files."""
    digests = sorted(r.sha256 or r.path for r in records)
    sizes = [max(r.width or 0, r.height or 0) for r in records if r.width]
    return {
        "n_images": len(records),
        "n_unreadable": sum(r.status != "no-signal" for r in failed),
        "n_no_signal": sum(r.status == "no-signal" for r in failed),
        "labels": dict(Counter(r.label for r in records)),
        "generators": dict(Counter(f"{r.label}:{r.generator}" for r in records)),
        "sources": dict(Counter(str(r.source) for r in records)),
        "formats": dict(Counter(f"{r.label}:{r.format}" for r in records)),
        "long_side_px": {"min": min(sizes), "max": max(sizes)} if sizes else None,
        "fingerprint": hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16],
    }


def select_splits(
    records: Sequence[ImageRecord],
    keep: str | Sequence[str] | None = None,
    drop: str | Sequence[str] | None = None,
) -> list[ImageRecord]:
    """The records whose split is one of ``keep`` (None: any) and none of ``drop``.

    Splits are compared case-insensitively; ``keep`` and ``drop`` are lists or comma-separated text
    (``"train,val"``); a record without a split has the split ``""``.

    Example:
        >>> rs = [ImageRecord("a", "real", "real", split="Train"), ImageRecord("b", "fake", "x", split="test")]
        >>> [r.path for r in select_splits(rs, keep="train,val")], [r.path for r in select_splits(rs, drop="test")]
        (['a'], ['a'])
    """

    def names(value: str | Sequence[str]) -> set[str]:
        parts = value.split(",") if isinstance(value, str) else value
        return {p.strip().lower() for p in parts}

    out = list(records)
    if keep:
        wanted = names(keep)
        out = [r for r in out if (r.split or "").lower() in wanted]
    if drop:
        dropped = names(drop)
        out = [r for r in out if (r.split or "").lower() not in dropped]
    return out


__all__ = ["data_summary", "labelled", "select_splits", "targets"]
