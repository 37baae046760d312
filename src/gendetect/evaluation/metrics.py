"""Detection metrics as pure numpy functions of labels ``y`` (1 = fake) and scores ``s`` (higher = fake).

Each one matches scikit-learn's definition where scikit-learn has one (the tests check this on seeded inputs):
``roc_auc`` = ``roc_auc_score``, ``average_precision`` = ``average_precision_score`` and ``roc_curve`` keeps the
same operating points as ``sklearn.metrics.roc_curve(drop_intermediate=False)``.

Verdict convention everywhere in gendetect: an image is called fake when its score is **strictly above** the
threshold.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata


def _check(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(int).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    return y, s


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tie correction); NaN when one class is absent."""
    y, s = _check(y, s)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` at every distinct score, from (0, 0) up; point i calls ``s >= thresholds[i]`` fake."""
    y, s = _check(y, s)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]
    tps = np.cumsum(y_sorted)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    n_pos, n_neg = max(int(y.sum()), 1), max(int((1 - y).sum()), 1)
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    thresholds = np.r_[np.inf, s_sorted[last_of_tie]]
    return fpr, tpr, thresholds


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision: sum over thresholds of (recall step) x precision; NaN without fakes."""
    y, s = _check(y, s)
    if y.sum() == 0:
        return math.nan
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]
    tps = np.cumsum(y_sorted)[last_of_tie]
    precision = tps / (last_of_tie + 1)
    recall = tps / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def tpr_at_fpr(y: np.ndarray, s: np.ndarray, max_fpr: float = 0.01) -> float:
    """Highest true-positive rate among operating points whose false-positive rate is at most ``max_fpr``."""
    y, s = _check(y, s)
    if y.sum() == 0 or (1 - y).sum() == 0:
        return math.nan
    fpr, tpr, _ = roc_curve(y, s)
    return float(tpr[fpr <= max_fpr + 1e-12].max())


def threshold_for_fpr(real_scores: np.ndarray, max_fpr: float, *, conformal: bool = False) -> float:
    """The lowest threshold at which at most ``max_fpr`` of ``real_scores`` lie strictly above it.

    With ``conformal=True`` the rule holds for the *next* real image rather than for these ones: the threshold is
    the ``ceil((n + 1) * (1 - max_fpr))``-th smallest of the ``n`` scores (the split-conformal quantile), so a new
    real image exchangeable with them scores above it with probability at most ``max_fpr``. That holds for the
    model whose scores these are (out-of-fold: the fold models); a model refit on all the data, as training ships,
    is close to them, not the same, so read it as a finite-sample correction rather than a promise. The in-sample rule
    lets ``floor(max_fpr * n)`` of these reals through and, on reals it did not see, runs slightly above the
    target on average; the conformal one lets one fewer through at most. With fewer than ``1 / max_fpr - 1``
    scores no threshold among them gives the guarantee, and the highest is returned.

    Use it on *validation* scores of real images only, never on test labels.

    >>> threshold_for_fpr(np.arange(1, 201) / 200, 0.01), threshold_for_fpr(np.arange(1, 201) / 200, 0.01, conformal=True)
    (0.99, 0.995)
    """
    r = np.sort(np.asarray(real_scores, dtype=np.float64))[::-1]
    if r.size == 0:
        raise ValueError("threshold_for_fpr needs at least one real score")
    if conformal:
        allowed = max(0, r.size - math.ceil((r.size + 1) * (1 - max_fpr) - 1e-9))
    else:
        allowed = math.floor(max_fpr * r.size + 1e-9)  # false positives we may accept
    return float(r[allowed]) if allowed < r.size else float(r[-1])


def threshold_for_group_fpr(real_scores: np.ndarray, groups, max_fpr: float, *, conformal: bool = False) -> float:
    """The lowest threshold at which *every* group of ``real_scores`` (a processing chain, a source) has at most
    ``max_fpr`` of its scores strictly above it: the largest of the groups' :func:`threshold_for_fpr`.

    A pooled threshold holds the target on average and lets one kind of real photo (screenshots, WebP) take
    several times its share of false alarms; this one holds it for each group. ``conformal`` as in
    :func:`threshold_for_fpr`, for each group. Use it on validation reals only.

    >>> threshold_for_group_fpr([0.1, 0.2, 0.3, 0.9], ["a", "a", "b", "b"], 0.0)
    0.9
    """
    s = np.asarray(real_scores, dtype=np.float64).ravel()
    g = np.asarray(groups, dtype=object).ravel()
    if s.shape != g.shape:
        raise ValueError(f"scores and groups differ in length: {s.shape[0]} vs {g.shape[0]}")
    if s.size == 0:
        raise ValueError("threshold_for_group_fpr needs at least one real score")
    return max(threshold_for_fpr(s[g == k], max_fpr, conformal=conformal) for k in dict.fromkeys(g.tolist()))


def binary_metrics(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy on real, on fake and overall at ``threshold`` (fake when ``s > threshold``), AP, AUC, EER, and TPR
    at 1% and 0.1% FPR.

    Metrics undefined for the given labels (e.g. AUC with one class) are NaN.
    """
    y, s = _check(y, s)
    pred = s > threshold
    real, fake = y == 0, y == 1
    return {
        "n_real": int(real.sum()),
        "n_fake": int(fake.sum()),
        "acc_real": float(np.mean(~pred[real])) if real.any() else math.nan,
        "acc_fake": float(np.mean(pred[fake])) if fake.any() else math.nan,
        "acc": float(np.mean(pred == fake)) if y.size else math.nan,
        "ap": average_precision(y, s),
        "auc": roc_auc(y, s),
        "tpr_at_1fpr": tpr_at_fpr(y, s, 0.01),
        "tpr_at_01fpr": tpr_at_fpr(y, s, 0.001),
        "eer": equal_error_rate(y, s),
    }


def equal_error_rate(y: np.ndarray, s: np.ndarray) -> float:
    """Rate at which false positives equal false negatives, interpolated between ROC operating points."""
    y, s = _check(y, s)
    if y.sum() == 0 or (1 - y).sum() == 0:
        return math.nan
    fpr, tpr, _ = roc_curve(y, s)
    fnr = 1.0 - tpr
    diff = fpr - fnr  # increases from -1 to +1 along the curve
    i = int(np.searchsorted(diff, 0.0))
    if i == 0:
        return float(fpr[0])
    if diff[i] == diff[i - 1]:
        return float(fpr[i])
    t = -diff[i - 1] / (diff[i] - diff[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """ECE of probabilities ``p`` of fake: bin-weighted mean |fraction of fakes - mean predicted P(fake)|.

    Uniform bins on [0, 1] as in ``sklearn.calibration.calibration_curve(strategy="uniform")``.
    """
    y, p = _check(y, p)
    if y.size == 0:
        return math.nan
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges[1:-1], p, side="right"), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(y[sel].mean() - p[sel].mean())
    return float(ece)


MIN_PER_CLASS_FOR_CI = 5
"""Fewer reals or fakes than this in a group and a bootstrap interval says nothing: reports show "too few"."""


def enough_for_ci(y: np.ndarray, min_per_class: int = MIN_PER_CLASS_FOR_CI) -> bool:
    """Whether labels ``y`` hold at least ``min_per_class`` reals and as many fakes for a bootstrap interval."""
    y = np.asarray(y).astype(int).ravel()
    return int((y == 0).sum()) >= min_per_class and int((y == 1).sum()) >= min_per_class


def bootstrap_ci(
    metric,
    y: np.ndarray,
    s: np.ndarray,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` of ``metric(y, s)``, resampling reals and fakes separately.

    Stratified resampling keeps both classes in every replicate, so AUC and AP stay defined.
    """
    y, s = _check(y, s)
    rng = np.random.default_rng(seed)
    real, fake = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    if real.size == 0 or fake.size == 0:
        return math.nan, math.nan
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.r_[rng.choice(real, real.size), rng.choice(fake, fake.size)]
        values[b] = metric(y[idx], s[idx])
    lo, hi = np.nanpercentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)
