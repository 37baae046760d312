"""Train a :class:`~gendetect.pipeline.DetectionPipeline` on labelled records and choose its threshold honestly.

``train_pipeline`` does three things:

1. extracts features of every labelled, readable training record (``split == "test"`` rows are refused: they are
   for evaluation only);
2. scores every training image *out of fold* with cross-validation. When the records come from several sources
   (``cnndetection-gallery/biggan``, ``wright-photos``...) the folds hold out whole sources, so the validation
   scores measure what happens on images from a source the detector has not seen. The decision threshold is the
   lowest P(fake) at which at most ``target_fpr`` of the real validation images are called fake;
3. refits the detector on all the training records.

A detector that holds out its own validation split while fitting (``Detector.validates_itself``, e.g. the ``cnn``
detector, which is costly to fit) is fitted once instead: the scores of its held-out rows (``Detector.held_out``)
replace the out-of-fold scores in 2., and that fit is the final model.

The validation metrics (overall and per generator) and the threshold rule are stored in the model's config.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from gendetect.calibration import create_calibrator
from gendetect.data.records import ImageRecord
from gendetect.data.summary import data_summary, labelled, targets
from gendetect.detectors import Detector
from gendetect.errors import DataSchemaError
from gendetect.evaluation.audit import shortcut_audit
from gendetect.evaluation.grouping import per_generator_metrics
from gendetect.evaluation.metrics import expected_calibration_error, threshold_for_fpr
from gendetect.features import FeatureExtractor
from gendetect.features.featurize import Progress, featurize
from gendetect.features.store import FeatureStore
from gendetect.imageio import DEFAULT_MAX_PIXELS
from gendetect.pipeline import DetectionPipeline
from gendetect.provenance import provenance

logger = logging.getLogger(__name__)


def out_of_fold_scores(
    detector: Detector, X: np.ndarray, y: np.ndarray, groups: Sequence[str] | None, *, n_folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, str]:
    """P(fake) of every row from a detector that did not see its fold. Returns ``(scores, scheme)``.

    With ``groups`` (sources) of at least ``n_folds`` distinct values the folds hold out whole groups
    (``StratifiedGroupKFold``); otherwise plain stratified folds.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    n_min = int(min(np.bincount(y, minlength=2)))
    if n_min < 2:
        raise DataSchemaError(f"Training needs at least 2 real and 2 fake images; got {np.bincount(y, minlength=2)}.")
    k = min(n_folds, n_min)
    if groups is not None and len(set(groups)) >= k:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(X, y, groups)
        scheme = f"{k}-fold cross-validation holding out whole sources (StratifiedGroupKFold)"
    else:
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y)
        scheme = f"{k}-fold stratified cross-validation"
    scores = np.full(len(y), np.nan)
    for train_idx, val_idx in splits:
        if len(np.unique(y[train_idx])) < 2:
            continue
        fold = clone(detector).fit(X[train_idx], y[train_idx])
        scores[val_idx] = fold.predict_proba(X[val_idx])[:, 1]
    if np.isnan(scores).any():  # a fold without both classes: score the rest with stratified folds
        missing = np.isnan(scores)
        logger.info("%d rows fell in one-class folds; rescoring them with stratified folds", missing.sum())
        for train_idx, val_idx in StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y):
            sel = val_idx[missing[val_idx]]
            if sel.size:
                scores[sel] = clone(detector).fit(X[train_idx], y[train_idx]).predict_proba(X[sel])[:, 1]
    return scores, scheme


def train_pipeline(
    records: Sequence[ImageRecord],
    extractor: FeatureExtractor,
    detector: Detector,
    *,
    target_fpr: float = 0.01,
    uncertain_fpr: float | None = 0.05,
    conformal: bool = True,
    n_folds: int = 5,
    seed: int = 0,
    jobs: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    name: str | None = None,
    data: str | None = None,
    allow_test_split: bool = False,
    calibration: str | None = None,
    audit: bool = True,
    store: FeatureStore | None = None,
    features: tuple[np.ndarray, list[ImageRecord], list[ImageRecord]] | None = None,
) -> DetectionPipeline:
    """Fit ``detector`` on ``extractor`` features of ``records`` and choose the threshold by cross-validation.

    Args:
        records: labelled records (unlabelled ones are ignored; ``split == "test"`` raises unless allowed).
        target_fpr: the threshold keeps the false-positive rate on real validation images at or below this.
        uncertain_fpr: images between the threshold for this looser false-positive rate and the threshold are
            called "uncertain" (an abstain band chosen on validation); ``None`` for no band.
        conformal: both thresholds at the split-conformal quantile of the out-of-fold real scores, so that a new
            real image like them is flagged with probability at most ``target_fpr``
            (:func:`~gendetect.evaluation.metrics.threshold_for_fpr`); ``False``: the in-sample rule, which lets
            ``floor(target_fpr * n)`` of the ``n`` validation reals through and runs slightly above the target on
            new ones.
        n_folds: cross-validation folds for the validation scores.
        data: where the records came from, recorded in the model.
        calibration: ``"temperature"`` or ``"isotonic"`` to calibrate P(fake) on the out-of-fold scores (before the
            threshold is chosen on them); ``None`` keeps the detector's own probabilities.
        audit: run the shortcut audit (file facts vs label) and record it in the model; warns when it fails.
        store: a feature store to read cached features from and write new ones to.
        features: precomputed ``featurize(records, extractor)`` output, to skip extraction.
    """
    records = labelled(records)
    test_rows = [r for r in records if (r.split or "").lower() == "test"]
    if test_rows and not allow_test_split:
        raise DataSchemaError(
            f"{len(test_rows)} records have split='test' (e.g. {test_rows[0].path}); test images must not be used "
            "for training or threshold choice. Filter them out (e.g. `--split trainval`)."
        )
    X, kept, failed = (
        features
        if features is not None
        else featurize(records, extractor, jobs=jobs, max_pixels=max_pixels, progress=progress, store=store)
    )
    y = targets(kept)
    if len(np.unique(y)) < 2:
        raise DataSchemaError(f"Training needs both real and fake images; got {dict(Counter(r.label for r in kept))}.")

    from sklearn.base import clone

    groups = [str(r.source) for r in kept]
    fitted = None
    if detector.validates_itself:
        # a detector that holds out its own validation split (a CNN: costly to fit) is fitted once; the scores of
        # its held-out rows stand in for the out-of-fold scores
        fitted = clone(detector).fit(X, y, groups=groups)
        val_idx, oof, scheme = fitted.held_out()
    else:
        val_idx = np.arange(len(y))
        oof, scheme = out_of_fold_scores(detector, X, y, groups, n_folds=n_folds, seed=seed)
    y_val, kept_val = y[val_idx], [kept[i] for i in val_idx]
    calibrator = None
    if calibration:
        calibrator = create_calibrator(calibration).fit(oof, y_val)
        ece_before = expected_calibration_error(y_val, oof)
        oof = calibrator(oof)
        logger.info("calibration %s: ECE %.3f -> %.3f", calibration, ece_before, expected_calibration_error(y_val, oof))
    n_real = int((y_val == 0).sum())
    too_few = conformal and n_real + 1 < 1 / target_fpr
    if too_few:
        logger.warning(
            "%d validation reals are too few for a conformal %g FPR threshold (%d needed): the threshold is the "
            "highest real score",
            n_real,
            target_fpr,
            math.ceil(1 / target_fpr - 1),
        )
    threshold = threshold_for_fpr(oof[y_val == 0], target_fpr, conformal=conformal)
    uncertain_from = None
    if uncertain_fpr is not None and uncertain_fpr > target_fpr:
        lower = threshold_for_fpr(oof[y_val == 0], uncertain_fpr, conformal=conformal)
        uncertain_from = lower if lower < threshold else None
    validation = per_generator_metrics(kept_val, oof, threshold)
    validation["all"]["ece"] = expected_calibration_error(y_val, oof)
    audit_result = shortcut_audit(kept) if audit else None

    fitted = fitted if fitted is not None else clone(detector).fit(X, y)
    info = {
        "name": name or f"{extractor.name}+{detector.name}",
        "threshold_rule": {
            "target_fpr": target_fpr,
            "scheme": scheme,
            "rule": (
                "the highest out-of-fold real score: too few validation reals for the split-conformal quantile at "
                "target_fpr"
                if too_few
                else "split-conformal quantile of the out-of-fold real scores: a new real image like them scores "
                "above it with probability <= target_fpr (for the fold models; the saved model is refit on all "
                "the data)"
                if conformal
                else "lowest P(fake) threshold whose false-positive rate on out-of-fold real images <= target_fpr"
            ),
            "conformal": conformal,
            "n_real_validation": n_real,
            "uncertain_fpr": uncertain_fpr,
            "uncertain_rule": "P(fake) above the threshold for uncertain_fpr but not above the threshold: 'uncertain'",
        },
        "training": {"data": data, **data_summary(kept, failed)},
        "validation": validation,
        "audit": audit_result,
        "provenance": provenance(),
    }
    logger.info("threshold %.4f (%s); out-of-fold AUC %.3f", threshold, scheme, validation["all"]["auc"])
    return DetectionPipeline(extractor, fitted, threshold, info, uncertain_from=uncertain_from, calibrator=calibrator)


__all__ = ["out_of_fold_scores", "train_pipeline"]
