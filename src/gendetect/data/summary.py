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
        "n_unreadable": len(failed),
        "labels": dict(Counter(r.label for r in records)),
        "generators": dict(Counter(f"{r.label}:{r.generator}" for r in records)),
        "sources": dict(Counter(str(r.source) for r in records)),
        "formats": dict(Counter(f"{r.label}:{r.format}" for r in records)),
        "long_side_px": {"min": min(sizes), "max": max(sizes)} if sizes else None,
        "fingerprint": hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16],
    }


__all__ = ["data_summary", "labelled", "targets"]
