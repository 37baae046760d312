"""Evaluation groupings: each generator's fakes against the reals to compare them with, metrics per generator,
and leave-one-source-out generalisation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gendetect.data.records import ImageRecord
from gendetect.data.summary import targets
from gendetect.detectors import Detector
from gendetect.evaluation.metrics import binary_metrics


def generator_pairs(records: Sequence[ImageRecord]) -> dict[str, tuple[np.ndarray, np.ndarray, bool]]:
    """For each fake generator: ``(its fake indices, the real indices to compare with, paired)``.

    The reals are those whose ``source`` matches one of the sources of the generator's fakes (e.g.
    ``cnndetection-gallery/biggan`` fakes against that set's reals), ``paired=True``; when no real shares a source,
    all real images, ``paired=False``.
    """
    reals = np.array([i for i, r in enumerate(records) if r.label == "real"], dtype=int)
    out = {}
    for g in sorted({str(r.generator) for r in records if r.label == "fake"}):
        fakes = np.array([i for i, r in enumerate(records) if r.label == "fake" and str(r.generator) == g], dtype=int)
        sources = {records[i].source for i in fakes}
        paired = np.array([i for i in reals if records[i].source in sources], dtype=int)
        out[g] = (fakes, paired, True) if paired.size else (fakes, reals, False)
    return out


def per_generator_metrics(
    records: Sequence[ImageRecord], scores: np.ndarray, threshold: float
) -> dict[str, dict[str, float]]:
    """Metrics overall and for each generator's fakes against its reals (see :func:`generator_pairs`)."""
    y = targets(records)
    scores = np.asarray(scores, dtype=np.float64)
    out = {"all": binary_metrics(y, scores, threshold)}
    for g, (fakes, reals, paired) in generator_pairs(records).items():
        idx = np.r_[reals, fakes].astype(int)
        out[g] = binary_metrics(y[idx], scores[idx], threshold)
        out[g]["reals_from"] = "same source" if paired else "all sources"
    return out


def leave_one_source_out(
    detector: Detector, X: np.ndarray, records: Sequence[ImageRecord]
) -> dict[str, dict[str, float]]:
    """Generalisation to unseen sources: for each source, fit on every *other* source and test on this one.

    A source is a subset holding one generator's fakes and their paired reals (``cnndetection-gallery/biggan``),
    so this is leave-one-generator-out with the reals of the held-out subset held out too. Returns metrics per
    held-out source (threshold 0.5 on P(fake); AUC, AP and TPR@1%FPR do not depend on it).
    """
    y = targets(records)
    sources = np.array([str(r.source) for r in records])
    out: dict[str, dict[str, float]] = {}
    for src in sorted(set(sources)):
        test = sources == src
        if len(np.unique(y[test])) < 2 or len(np.unique(y[~test])) < 2:
            continue
        from sklearn.base import clone

        fitted = clone(detector).fit(X[~test], y[~test])
        out[src] = binary_metrics(y[test], fitted.predict_proba(X[test])[:, 1], 0.5)
    return out


__all__ = ["generator_pairs", "leave_one_source_out", "per_generator_metrics"]
