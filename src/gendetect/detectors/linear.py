"""Linear probe: standardised features + L2-regularised logistic regression (UnivFD's linear probe)."""

from __future__ import annotations

import numpy as np

from gendetect.detectors.base import DETECTORS, Detector, _Standardizer


@DETECTORS.register("logistic")
class LogisticDetector(Detector):
    """Logistic regression on standardised features; ``decision_function`` is the log-odds of fake.

    Args:
        C: inverse L2 regularisation strength (smaller = stronger regularisation).
        class_weight: ``"balanced"`` reweights classes so an unbalanced training set does not shift the bias.
        standardize: standardise each feature with the training mean and standard deviation first.
        max_iter: iteration cap of the L-BFGS solver.
    """

    name = "logistic"
    _state_arrays = ("mean_", "scale_", "coef_", "intercept_")

    def __init__(
        self, C: float = 1.0, class_weight: str | None = "balanced", standardize: bool = True, max_iter: int = 2000
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.standardize = standardize
        self.max_iter = max_iter

    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        if self.standardize:
            self.mean_, self.scale_ = _Standardizer.fit(X)
        else:
            self.mean_, self.scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        clf = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter)
        clf.fit((X - self.mean_) / self.scale_, target.astype(int))
        self.n_iter_ = int(np.max(clf.n_iter_))
        self.coef_ = clf.coef_.ravel().astype(np.float64)
        self.intercept_ = clf.intercept_.astype(np.float64)

    @classmethod
    def from_linear(cls, w: np.ndarray, b: np.ndarray) -> LogisticDetector:
        """A fitted detector computing ``sigmoid(w . x + b)`` on raw features (no standardisation): a released
        linear head (UnivFD's ``fc_weights.pth``, a zoo entry's probe) in gendetect's own format."""
        w = np.asarray(w, np.float64).ravel()
        b = np.asarray(b, np.float64).ravel()
        detector = cls(standardize=False)
        return detector.load_state_dict(
            {
                "mean_": np.zeros_like(w),
                "scale_": np.ones_like(w),
                "coef_": w,
                "intercept_": b,
                "classes_": np.array([0, 1]),
                "n_features_in_": np.array([w.size]),
            }
        )

    def _decision(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean_) / self.scale_) @ self.coef_ + self.intercept_[0]
