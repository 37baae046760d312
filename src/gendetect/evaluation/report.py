"""Evaluate a model on labelled records: metrics per generator and overall, as a JSON-ready report."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from gendetect.data.records import ImageRecord
from gendetect.imageio import DEFAULT_MAX_PIXELS
from gendetect.output import json_safe
from gendetect.pipeline import DetectionPipeline, load_model
from gendetect.provenance import provenance


def score_records(
    pipeline: DetectionPipeline,
    records: Sequence[ImageRecord],
    *,
    jobs: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Any = None,
    store: Any = None,
) -> tuple[np.ndarray, list[ImageRecord], list[ImageRecord]]:
    """``(P(fake) (N,) of the scored records, those records, the others)``.

    The others are the unreadable records (status ``"error"``) and, for a tiled model, the images the no-signal
    guard leaves unscored (status ``"no-signal"``, the reason in ``error``): ``scan`` calls those ``uncertain``
    without a score, so the metrics leave them out rather than count them at P(fake) 0.5, and the report counts
    them (``n_no_signal``).
    """
    from gendetect.features.featurize import featurize

    X, kept, failed = featurize(
        records, pipeline.extractor, jobs=jobs, max_pixels=max_pixels, progress=progress, store=store
    )
    if pipeline.tiled and len(kept):
        reasons = [pipeline.signal_of(x)[2] for x in X]
        # copies: the caller's records stay "ok" for the next model, which may judge them
        failed = failed + [replace(r, status="no-signal", error=why) for r, why in zip(kept, reasons) if why]
        scored = np.asarray([r is None for r in reasons])
        X, kept = X[scored], [r for r, ok in zip(kept, scored) if ok]
    scores = pipeline.predict_proba_features(X) if len(kept) else np.zeros(0)
    return scores, kept, failed


def item_rows(kept: Sequence[ImageRecord], scores: np.ndarray, failed: Sequence[ImageRecord]) -> list[dict[str, Any]]:
    """One JSON row per record: its score, or why it could not be scored (an unreadable file's ``error``; the
    verdict ``uncertain`` and its ``reason`` for an image without forensic signal)."""

    def unscored(r: ImageRecord) -> dict[str, Any]:
        row = {"path": r.path, "label": r.label, "generator": r.generator}
        if r.status == "no-signal":
            return {**row, "verdict": "uncertain", "reason": r.error}
        return {**row, "error": r.error}

    return [
        {"path": r.path, "label": r.label, "generator": r.generator, "source": r.source, "p_fake": float(s)}
        for r, s in zip(kept, scores)
    ] + [unscored(r) for r in failed]


def evaluate_pipeline(
    model: DetectionPipeline | str | os.PathLike | None,
    records: Sequence[ImageRecord],
    *,
    jobs: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Any = None,
    data: str | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Score ``records`` with ``model`` and compute metrics at the model's threshold.

    Returns a report dict: ``model``, ``threshold``, ``data`` (summary), ``metrics`` (``{"all": {...},
    generator: {...}}``), ``items`` (path, label, generator, p_fake or error for every record) and ``provenance``.
    The ``per-generator`` protocol (:mod:`gendetect.evaluation.protocols`) adds confidence intervals and plots.
    """
    from gendetect.data.summary import data_summary, labelled
    from gendetect.evaluation.grouping import per_generator_metrics

    pipeline = load_model(model)
    thr = pipeline.threshold if threshold is None else float(threshold)
    scores, kept, failed = score_records(
        pipeline, labelled(records), jobs=jobs, max_pixels=max_pixels, progress=progress
    )
    return {
        "model": pipeline.name,
        "model_path": pipeline.info.get("path"),
        "threshold": thr,
        "data": {"path": data, **data_summary(kept, failed)},
        "metrics": per_generator_metrics(kept, scores, thr) if kept else {},
        "items": item_rows(kept, scores, failed),
        "provenance": provenance(),
    }


def save_report(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``report`` as strict JSON (:func:`gendetect.output.json_safe`: NaN, an undefined metric, and
    infinities become ``null``; numpy scalars Python numbers), the one form of every written report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(report), indent=2, sort_keys=False, allow_nan=False) + "\n")
    return path
