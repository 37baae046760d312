"""gendetect's metrics match scikit-learn's reference implementations on seeded inputs (ties included)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from gendetect.evaluation.metrics import (
    average_precision,
    binary_metrics,
    roc_auc,
    roc_curve,
    threshold_for_fpr,
    tpr_at_fpr,
)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("tied", [False, True])
def test_against_sklearn(seed: int, tied: bool) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = rng.normal(size=200) + 0.7 * y
    if tied:
        s = np.round(s, 1)
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    fpr, tpr, thr = roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    expected_tpr = max(t for f, t in zip(sk_fpr, sk_tpr) if f <= 0.01)
    assert tpr_at_fpr(y, s, 0.01) == pytest.approx(expected_tpr)


def test_binary_metrics_accuracies_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = rng.uniform(size=300) * 0.6 + 0.4 * y
    m = binary_metrics(y, s, threshold=0.5)
    pred = (s > 0.5).astype(int)
    assert m["acc"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["acc_fake"] == pytest.approx(skm.recall_score(y, pred))
    assert m["acc_real"] == pytest.approx(skm.recall_score(1 - y, 1 - pred))
    assert m["n_real"] + m["n_fake"] == 300


def test_threshold_for_fpr_keeps_false_positives_at_target() -> None:
    reals = np.random.default_rng(0).uniform(size=1000)
    for target in (0.0, 0.01, 0.05, 0.2):
        t = threshold_for_fpr(reals, target)
        assert np.mean(reals > t) <= target + 1e-12
        # and it is the lowest such threshold: any lower real score would add a false positive
        lower = reals[reals < t]
        if lower.size:
            assert np.mean(reals > lower.max()) > target


def test_undefined_metrics_are_nan() -> None:
    m = binary_metrics(np.zeros(5, int), np.linspace(0, 1, 5), 0.5)
    assert math.isnan(m["auc"]) and math.isnan(m["ap"]) and math.isnan(m["acc_fake"])
    assert m["acc_real"] == pytest.approx(0.6)  # 0.75 and 1.0 are above the threshold
