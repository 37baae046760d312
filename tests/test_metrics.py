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


def test_conformal_threshold_holds_the_target_on_reals_it_did_not_see() -> None:
    # n reals per calibration set, then the false-positive rate of its threshold on fresh reals of the same kind:
    # the in-sample rule lets floor(0.01 n) through and runs above 1% on unseen reals (for uniform scores its
    # expected rate is (allowed + 1) / (n + 1)); the split-conformal quantile holds the target
    rng = np.random.default_rng(3)
    n, trials = 447, 4000
    cal = rng.uniform(size=(trials, n))
    in_sample = np.array([threshold_for_fpr(c, 0.01) for c in cal])
    conformal = np.array([threshold_for_fpr(c, 0.01, conformal=True) for c in cal])
    # uniform scores: P(fresh real > t) = 1 - t exactly
    assert np.mean(1 - in_sample) > 0.0105
    assert np.mean(1 - conformal) <= 0.01
    assert (conformal >= in_sample).all()
    # it lets at most one fewer through in-sample, and at least as many as the guarantee allows
    through = (cal > conformal[:, None]).sum(1)
    assert set(through.tolist()) == {n - int(np.ceil((n + 1) * 0.99))}
    # too few reals for any threshold among them to guarantee 1%: the highest one
    assert threshold_for_fpr(np.arange(50.0), 0.01, conformal=True) == 49.0
    assert threshold_for_fpr(np.arange(50.0), 0.01) == 49.0


def test_threshold_for_group_fpr_holds_the_target_in_every_group() -> None:
    from gendetect.evaluation.metrics import threshold_for_group_fpr

    rng = np.random.default_rng(1)
    # three groups of real scores, one shifted up (the chain that draws the false alarms) and one small
    s = np.r_[rng.uniform(size=600), rng.uniform(size=300) + 0.3, rng.uniform(size=50)]
    g = np.r_[["plain"] * 600, ["screenshot"] * 300, ["small"] * 50]
    t = threshold_for_group_fpr(s, g, 0.01)
    for k in ("plain", "screenshot", "small"):
        assert np.mean(s[g == k] > t) <= 0.01
    # the worst group sets it: the pooled threshold lets that group exceed the target, this one does not
    pooled = threshold_for_fpr(s, 0.01)
    assert np.mean(s[g == "screenshot"] > pooled) > 0.01
    assert t == threshold_for_fpr(s[g == "screenshot"], 0.01)
    with pytest.raises(ValueError, match="differ in length"):
        threshold_for_group_fpr(s, g[:-1], 0.01)


def test_undefined_metrics_are_nan() -> None:
    m = binary_metrics(np.zeros(5, int), np.linspace(0, 1, 5), 0.5)
    assert math.isnan(m["auc"]) and math.isnan(m["ap"]) and math.isnan(m["acc_fake"])
    assert m["acc_real"] == pytest.approx(0.6)  # 0.75 and 1.0 are above the threshold


@pytest.mark.parametrize("seed", range(4))
def test_eer_matches_the_roc_crossing(seed: int) -> None:
    from gendetect.evaluation.metrics import equal_error_rate

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    s = rng.normal(size=400) + 1.2 * y
    fpr, tpr, _ = skm.roc_curve(y, s)
    fnr = 1 - tpr
    i = np.nanargmin(np.abs(fpr - fnr))
    eer = equal_error_rate(y, s)
    assert min(fpr[i], fnr[i]) - 0.01 <= eer <= max(fpr[i], fnr[i]) + 0.01
    assert equal_error_rate(np.r_[0, 0, 1, 1], np.r_[0.1, 0.2, 0.8, 0.9]) == 0.0


def test_ece_matches_sklearn_calibration_curve() -> None:
    from sklearn.calibration import calibration_curve

    from gendetect.evaluation.metrics import expected_calibration_error

    rng = np.random.default_rng(0)
    p = rng.uniform(size=2000)
    y = (rng.uniform(size=2000) < p**2).astype(int)  # over-confident probabilities
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    counts = np.histogram(p, bins=np.linspace(0, 1, 11))[0]
    weights = counts[counts > 0] / counts.sum()
    expected = float(np.sum(weights * np.abs(prob_true - prob_pred)))
    assert expected_calibration_error(y, p, 10) == pytest.approx(expected, abs=1e-9)
    perfect_y = (rng.uniform(size=20000) < (p2 := rng.uniform(size=20000))).astype(int)
    assert expected_calibration_error(perfect_y, p2) < 0.02


def test_bootstrap_ci_contains_the_estimate_and_narrows_with_data() -> None:
    from gendetect.evaluation.metrics import bootstrap_ci

    rng = np.random.default_rng(1)
    widths = []
    for n in (50, 800):
        y = rng.integers(0, 2, n)
        s = rng.normal(size=n) + y
        lo, hi = bootstrap_ci(roc_auc, y, s, n_boot=300)
        assert lo <= roc_auc(y, s) <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2
