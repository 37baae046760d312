"""Cosine k-nearest-neighbour detector: UnivFD's nearest-neighbour classifier in a fixed feature space."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from gendetect.detectors.base import DETECTORS, Detector, _Standardizer


def _normalise(X: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norm, 1e-12)


@DETECTORS.register("knn")
class KNNDetector(Detector):
    """Score = mean cosine similarity to the ``k`` nearest fakes minus that to the ``k`` nearest reals.

    With ``k=1`` this is UnivFD's nearest neighbour rule (closer to the fake bank than to the real bank means fake).
    P(fake) is a logistic (Platt) map of the score, fitted on leave-one-out scores of the training bank, so it is a
    monotone function of ``decision_function`` and roughly calibrated.

    Args:
        k: neighbours per class.
        standardize: standardise features before the cosine similarity (useful for hand-made features; CLIP
            embeddings are usually used unstandardised).
        batch_size: query rows per similarity block (bounds memory at ``batch_size * bank size`` floats).
        faiss_min_bank: banks of at least this many vectors are searched with faiss (exact inner-product
            ``IndexFlatIP``, float32) when ``faiss-cpu`` is installed; smaller banks use numpy in float64.
        faiss_hnsw_min_bank: banks of at least this many vectors use an approximate HNSW graph index
            (``IndexHNSWFlat``, 32 links, inner product) instead: sub-linear search over millions of vectors.
    """

    name = "knn"
    _state_arrays = ("mean_", "scale_", "bank_", "bank_labels_", "platt_")

    def __init__(
        self,
        k: int = 1,
        standardize: bool = True,
        batch_size: int = 1024,
        faiss_min_bank: int = 50_000,
        faiss_hnsw_min_bank: int = 2_000_000,
    ) -> None:
        self.k = k
        self.standardize = standardize
        self.batch_size = batch_size
        self.faiss_min_bank = faiss_min_bank
        self.faiss_hnsw_min_bank = faiss_hnsw_min_bank

    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}.")
        if self.standardize:
            self.mean_, self.scale_ = _Standardizer.fit(X)
        else:
            self.mean_, self.scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        self.bank_ = _normalise((X - self.mean_) / self.scale_)
        self.bank_labels_ = target.astype(np.int8)
        self.platt_ = np.array([1.0, 0.0])
        loo = self._scores(self.bank_, exclude_self=True)
        if np.unique(target).size == 2 and np.ptp(loo) > 0:
            lr = LogisticRegression(C=100.0).fit(loo[:, None], target.astype(int))
            slope = float(lr.coef_[0, 0])
            self.platt_ = np.array([slope, float(lr.intercept_[0])]) if slope > 0 else np.array([1.0, 0.0])

    def _use_faiss(self) -> bool:
        if len(self.bank_) < self.faiss_min_bank:
            return False
        try:
            import faiss  # noqa: F401
        except ImportError:
            return False
        return True

    def _scores_faiss(self, Q: np.ndarray, exclude_self: bool) -> np.ndarray:
        import faiss

        means = []
        for cls in (1, 0):
            rows = np.flatnonzero(self.bank_labels_ == cls)
            d = self.bank_.shape[1]
            if len(self.bank_) >= self.faiss_hnsw_min_bank:
                index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efSearch = max(64, 4 * (self.k + 1))
            else:
                index = faiss.IndexFlatIP(d)
            index.add(np.ascontiguousarray(self.bank_[rows], dtype=np.float32))
            kk = min(self.k + int(exclude_self), len(rows))
            sims, ids = index.search(np.ascontiguousarray(Q, dtype=np.float32), kk)
            sims = sims.astype(np.float64)
            if exclude_self:  # query i is bank row i: drop it from its own class's neighbours
                sims[rows[ids] == np.arange(len(Q))[:, None]] = -np.inf
            means.append(self._topk_mean(sims))
        return means[0] - means[1]

    def _scores(self, Q: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        if self._use_faiss():
            return self._scores_faiss(Q, exclude_self)
        out = np.empty(len(Q))
        fake = self.bank_labels_ == 1
        for start in range(0, len(Q), self.batch_size):
            sims = Q[start : start + self.batch_size] @ self.bank_.T
            if exclude_self:
                rows = np.arange(sims.shape[0])
                sims[rows, rows + start] = -np.inf
            out[start : start + len(sims)] = self._topk_mean(sims[:, fake]) - self._topk_mean(sims[:, ~fake])
        return out

    def _topk_mean(self, sims: np.ndarray) -> np.ndarray:
        k = min(self.k, sims.shape[1])
        top = -np.partition(-sims, k - 1, axis=1)[:, :k]
        top = np.where(np.isfinite(top), top, -1.0)  # a class with only the excluded row left
        return top.mean(axis=1)

    def _decision(self, X: np.ndarray) -> np.ndarray:
        raw = self._scores(_normalise((X - self.mean_) / self.scale_))
        return self.platt_[0] * raw + self.platt_[1]
