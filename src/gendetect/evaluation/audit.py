"""Shortcut audit: can real and fake be told apart from the file alone, without looking at pixels?

A trivial classifier on file format, width, height, aspect ratio, JPEG quality and EXIF presence is
cross-validated on the labelled records. If its ROC AUC beats chance by more than ``margin``, any detector trained
or evaluated on this data may be scoring the file, not the generator, and we say so loudly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from gendetect.data.records import ImageRecord
from gendetect.evaluation.metrics import roc_auc

logger = logging.getLogger(__name__)

FEATURES = (
    "is_jpeg",
    "is_png",
    "is_webp",
    "is_other_format",
    "log2_width",
    "log2_height",
    "log2_aspect",
    "jpeg_quality",
    "has_exif",
)
DEFAULT_MARGIN = 0.1


def metadata_features(records: Sequence[ImageRecord]) -> np.ndarray:
    """``(N, 9)`` float64 file facts, in :data:`FEATURES` order (missing values become 0).

    File size is left out on purpose: for lossless formats it follows the pixels (an up-sampled image compresses
    better), so it is a trace, not a delivery shortcut.
    """
    rows = []
    for r in records:
        fmt = (r.format or "").upper()
        w, h = max(r.width or 1, 1), max(r.height or 1, 1)
        rows.append(
            [
                fmt == "JPEG",
                fmt == "PNG",
                fmt == "WEBP",
                fmt not in ("JPEG", "PNG", "WEBP"),
                math.log2(w),
                math.log2(h),
                math.log2(w / h),
                r.jpeg_quality or 0,
                bool(r.has_exif),
            ]
        )
    return np.asarray(rows, dtype=np.float64)


def shortcut_audit(records: Sequence[ImageRecord], *, margin: float = DEFAULT_MARGIN, seed: int = 0) -> dict[str, Any]:
    """Cross-validated AUC of a file-facts classifier, per-feature AUCs, and whether it beats chance by ``margin``.

    Returns ``{"auc", "margin", "flagged", "message", "per_feature": {name: auc}, "n"}``.
    """
    recs = [r for r in records if r.label in ("real", "fake") and r.status == "ok"]
    y = np.array([r.label == "fake" for r in recs], dtype=int)
    n_min = int(min(np.bincount(y, minlength=2))) if len(y) else 0
    if n_min < 2:
        return {
            "auc": None,
            "margin": margin,
            "flagged": False,
            "n": len(recs),
            "message": "shortcut audit skipped: needs at least 2 real and 2 fake readable images",
            "per_feature": {},
        }
    X = metadata_features(recs)
    folds = StratifiedKFold(n_splits=min(5, n_min), shuffle=True, random_state=seed)
    clf = RandomForestClassifier(n_estimators=100, max_depth=4, random_state=seed, n_jobs=1)
    scores = cross_val_predict(clf, X, y, cv=folds, method="predict_proba")[:, 1]
    auc = roc_auc(y, scores)
    per_feature = {}
    for j, name in enumerate(FEATURES):
        a = roc_auc(y, X[:, j]) if np.ptp(X[:, j]) > 0 else 0.5
        per_feature[name] = float(max(a, 1 - a))  # separation, whichever direction
    flagged = bool(auc >= 0.5 + margin)
    top = sorted(per_feature.items(), key=lambda kv: -kv[1])[:3]
    hint = ", ".join(f"{k} (AUC {v:.2f})" for k, v in top if v > 0.5)
    if flagged:
        message = (
            f"SHORTCUT WARNING: file facts alone separate real from fake with AUC {auc:.2f} "
            f"(chance 0.50, margin {margin}); most telling: {hint}. A detector can score well here by "
            "learning the file, not the generator. Re-encode real and fake alike (same format, quality, "
            "size) before trusting results."
        )
        logger.warning(message)
    else:
        message = f"shortcut audit passed: file facts separate real from fake with AUC {auc:.2f} (< {0.5 + margin:.2f})"
    return {
        "auc": float(auc),
        "margin": margin,
        "flagged": flagged,
        "message": message,
        "per_feature": per_feature,
        "n": len(recs),
    }
