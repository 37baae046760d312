"""Gradient-boosted trees (scikit-learn's ``HistGradientBoostingClassifier``), predicted with numpy.

Fitting uses scikit-learn; the fitted trees are flattened into plain arrays (one node table for all trees), so a
saved model is safetensors, not a pickle, and predicting needs only numpy: the embedded default model scans
without importing scikit-learn.

Binning. The trees split on at most 255 bins per feature. We choose the bins ourselves, from unweighted quantiles
(:func:`quantile_snap`), and hand scikit-learn each value snapped to the upper edge of its bin: scikit-learn >= 1.9
computes weighted quantiles when rows carry weights (tiles weighted 1 / tiles of their image, or balanced
classes), which made a fit 10-15x slower here for no gain. Each split's threshold is then moved to the bin edge
it stands for, so raw values go the way their bin went in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gendetect.detectors.base import DETECTORS, Detector

MAX_BINS = 255


def quantile_snap(X: np.ndarray, max_bins: int = MAX_BINS) -> tuple[np.ndarray, list[np.ndarray]]:
    """Snap every column of ``X`` to the upper edge of its unweighted quantile bin; returns the snapped copy and,
    per column, the increasing edges (at most ``max_bins``; a column with fewer distinct values keeps them all).
    NaN stays NaN.

    >>> Xs, edges = quantile_snap(np.array([[0.1], [0.2], [0.2], [0.9]]), max_bins=2)
    >>> Xs.ravel().tolist(), edges[0].tolist()
    ([0.2, 0.2, 0.2, 0.9], [0.2, 0.9])
    """
    X = np.asarray(X, np.float64)
    out = X.copy()
    edges = []
    for j in range(X.shape[1]):
        col = X[:, j]
        ok = ~np.isnan(col)
        values = np.unique(col[ok])
        if len(values) > max_bins:
            e = np.unique(np.quantile(col[ok], np.linspace(0, 1, max_bins + 1)[1:], method="inverted_cdf"))
        else:
            e = values
        edges.append(e)
        if len(e):
            out[ok, j] = e[np.minimum(np.searchsorted(e, col[ok], side="left"), len(e) - 1)]
    return out, edges


@DETECTORS.register("hgb")
class HistGBDetector(Detector):
    """Histogram gradient boosting on feature vectors; ``decision_function`` is the log-odds of fake.

    Args:
        max_iter: boosting rounds (trees).
        learning_rate: shrinkage per tree.
        max_leaf_nodes: leaves per tree.
        min_samples_leaf: minimum samples per leaf.
        l2_regularization: L2 penalty on leaf values.
        max_features: share of features drawn per split (scikit-learn >= 1.4).
        class_weight: ``"balanced"`` reweights classes.
        random_state: seed for feature subsampling.
        n_seeds: fit this many models, with seeds ``random_state``, ``random_state + 1``, ..., and average their
            log-odds (seed bagging: the feature draws differ, the rows do not). The averaged trees are stored
            as one model (each tree's leaf values divided by ``n_seeds``), so prediction and the saved format
            are those of a single model with ``n_seeds`` times the trees.
        threads: OpenMP threads while fitting (``None``: scikit-learn's default, every core). One by default:
            scikit-learn's per-feature binning threads slow a fit down by an order of magnitude when the machine
            is busy (folds, feature workers or other jobs running beside it).
    """

    name = "hgb"
    _state_arrays = (
        "node_feature_",
        "node_threshold_",
        "node_left_",
        "node_right_",
        "node_leaf_",
        "node_value_",
        "node_missing_left_",
        "tree_roots_",
        "baseline_",
    )

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 20,
        l2_regularization: float = 1.0,
        max_features: float = 0.5,
        class_weight: str | None = "balanced",
        random_state: int = 0,
        n_seeds: int = 1,
        threads: int | None = 1,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_features = max_features
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_seeds = n_seeds
        self.threads = threads

    def fit(self, X: Any, y: Any, *, groups: Any = None, sample_weight: Any = None) -> HistGBDetector:
        """As :meth:`Detector.fit`, with optional per-row ``sample_weight`` (e.g. 1 / tiles of the row's image)."""
        self._sample_weight = None if sample_weight is None else np.asarray(sample_weight, np.float64)
        try:
            return super().fit(X, y, groups=groups)
        finally:
            self._sample_weight = None

    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits

        n_seeds = int(self.n_seeds)
        if n_seeds < 1:
            raise ValueError(f"n_seeds must be at least 1, got {self.n_seeds}")
        Xs, edges = quantile_snap(X)
        y, weight = target.astype(int), getattr(self, "_sample_weight", None)
        feature, threshold, left, right, leaf, value, missing, roots = [], [], [], [], [], [], [], []
        baselines = []
        offset = 0
        for k in range(n_seeds):
            clf = HistGradientBoostingClassifier(
                max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization,
                max_features=self.max_features,
                class_weight=self.class_weight,
                early_stopping=False,
                random_state=self.random_state + k,
            )
            with threadpool_limits(self.threads):
                clf.fit(Xs, y, sample_weight=weight)
            baselines.append(float(np.asarray(clf._baseline_prediction, np.float64).ravel()[0]))
            for (tree,) in clf._predictors:  # binary: one tree per iteration
                nodes = tree.nodes
                roots.append(offset)
                feature.append(nodes["feature_idx"].astype(np.int64))
                threshold.append(nodes["num_threshold"].astype(np.float64))
                left.append(nodes["left"].astype(np.int64) + offset)
                right.append(nodes["right"].astype(np.int64) + offset)
                leaf.append(nodes["is_leaf"].astype(bool))
                value.append(nodes["value"].astype(np.float64) / n_seeds)  # the mean of the seeds' log-odds
                missing.append(nodes["missing_go_to_left"].astype(bool))
                offset += len(nodes)
        self.node_feature_ = np.concatenate(feature)
        is_leaf = np.concatenate(leaf)
        self.node_threshold_ = _edge_thresholds(self.node_feature_, np.concatenate(threshold), is_leaf, edges)
        self.node_left_ = np.concatenate(left)
        self.node_right_ = np.concatenate(right)
        self.node_leaf_ = is_leaf.astype(np.uint8)
        self.node_value_ = np.concatenate(value)
        self.node_missing_left_ = np.concatenate(missing).astype(np.uint8)
        self.tree_roots_ = np.asarray(roots, np.int64)
        self.baseline_ = np.asarray([np.mean(baselines)], np.float64)

    def _decision(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float64)
        n = X.shape[0]
        idx = np.broadcast_to(self.tree_roots_, (n, len(self.tree_roots_))).copy()  # (N, trees) current node
        rows = np.arange(n)[:, None]
        leaf = self.node_leaf_.astype(bool)
        missing_left = self.node_missing_left_.astype(bool)
        while True:
            active = ~leaf[idx]
            if not active.any():
                break
            x = X[rows, self.node_feature_[idx]]
            go_left = np.where(np.isnan(x), missing_left[idx], x <= self.node_threshold_[idx])
            nxt = np.where(go_left, self.node_left_[idx], self.node_right_[idx])
            idx = np.where(active, nxt, idx)
        return self.baseline_[0] + self.node_value_[idx].sum(axis=1)


def _edge_thresholds(feature: np.ndarray, threshold: np.ndarray, leaf: np.ndarray, edges: list) -> np.ndarray:
    """scikit-learn splits the snapped values at midpoints between two edges; the raw-value split is the lower of
    the two edges (a value in that bin or below goes left, as its snapped copy did)."""
    out = threshold.copy()
    for k in np.where(~leaf)[0]:
        e = edges[feature[k]]
        i = np.searchsorted(e, threshold[k], side="right") - 1
        if i >= 0:
            out[k] = e[i]
    return out
