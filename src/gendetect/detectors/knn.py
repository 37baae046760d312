"""Cosine k-nearest-neighbour detector: UnivFD's nearest-neighbour classifier in a fixed feature space.

Small banks are searched exactly with numpy. From ``faiss_min_bank`` vectors on, search goes through faiss
(``faiss-cpu``, the ``knn`` extra): an exact ``IndexFlatIP`` by default, and from ``faiss_approx_min_bank`` vectors on
an approximate index, HNSW (``IndexHNSWFlat``) or IVF (``IndexIVFFlat``), for sub-linear search over millions of
vectors. Indexes are built once per process and reused by every later query.

A bank of millions of vectors need not fit in memory twice: :func:`knn_from_store` streams it shard by shard from a
:class:`~gendetect.features.store.FeatureStore` (two passes: standardisation statistics, then the normalised float32
bank), never materialising the float64 feature matrix that :meth:`KNNDetector.fit` works on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from gendetect.detectors.base import DETECTORS, Detector
from gendetect.errors import DataSchemaError

logger = logging.getLogger(__name__)

APPROX_INDEXES = ("hnsw", "ivf")
Chunks = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]


def _normalise(X: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norm, 1e-12)


@DETECTORS.register("knn")
class KNNDetector(Detector):
    """Score = mean cosine similarity to the ``k`` nearest fakes minus that to the ``k`` nearest reals.

    With ``k=1`` this is UnivFD's nearest neighbour rule (closer to the fake bank than to the real bank means fake).
    P(fake) is a logistic (Platt) map of the score, fitted on leave-one-out scores of (a sample of) the training
    bank, so it is a monotone function of ``decision_function`` and roughly calibrated.

    Args:
        k: neighbours per class.
        standardize: standardise features before the cosine similarity (useful for hand-made features; CLIP
            embeddings are usually used unstandardised).
        batch_size: query rows per similarity block (bounds memory at ``batch_size * bank size`` floats).
        faiss_min_bank: banks of at least this many vectors are searched with faiss (exact ``IndexFlatIP``) when
            ``faiss-cpu`` is installed; smaller banks use numpy in float64.
        faiss_approx_min_bank: banks of at least this many vectors use an approximate index instead.
        faiss_approx: which approximate index: ``"hnsw"`` (graph, 32 links; no training) or ``"ivf"``
            (inverted lists over ``4 * sqrt(n)`` k-means cells, searched ``nprobe = cells / 8``, at least 16).
        platt_sample: the Platt map is fitted on leave-one-out scores of at most this many bank vectors.
    """

    name = "knn"
    _state_arrays = ("mean_", "scale_", "bank_", "bank_labels_", "platt_")

    def __init__(
        self,
        k: int = 1,
        standardize: bool = True,
        batch_size: int = 1024,
        faiss_min_bank: int = 50_000,
        faiss_approx_min_bank: int = 2_000_000,
        faiss_approx: str = "hnsw",
        platt_sample: int = 20_000,
    ) -> None:
        self.k = k
        self.standardize = standardize
        self.batch_size = batch_size
        self.faiss_min_bank = faiss_min_bank
        self.faiss_approx_min_bank = faiss_approx_min_bank
        self.faiss_approx = faiss_approx
        self.platt_sample = platt_sample

    # -- fitting -----------------------------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        self._fit_chunks(lambda: [(X, target)])

    def fit_stream(self, chunks: Chunks) -> KNNDetector:
        """Fit from a re-iterable stream of ``(X (n, dim), y (n,))`` chunks, y in {0, 1} (1 = fake).

        ``chunks()`` is called twice (statistics, then the bank), so it must return a fresh iterator each time.
        Memory stays at one chunk plus the float32 bank.
        """
        self._fit_chunks(chunks)
        self.classes_ = np.array([0, 1])
        return self

    def _fit_chunks(self, chunks: Chunks) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}.")
        if self.faiss_approx not in APPROX_INDEXES:
            raise ValueError(f"faiss_approx must be one of {APPROX_INDEXES}, got {self.faiss_approx!r}.")
        # pass 1: mean and standard deviation, merged chunk by chunk (Chan et al.'s parallel update: stable, and for
        # a single chunk the same two-pass formula as an in-memory fit)
        n, mean, m2, classes = 0, None, None, set()
        for X, y in chunks():
            X = np.asarray(X, np.float64)
            m, chunk_mean = len(X), X.mean(axis=0)
            chunk_m2 = ((X - chunk_mean) ** 2).sum(axis=0)
            if mean is None:
                mean, m2 = chunk_mean, chunk_m2
            else:
                delta = chunk_mean - mean
                mean = mean + delta * m / (n + m)
                m2 = m2 + chunk_m2 + delta**2 * n * m / (n + m)
            n += m
            classes.update(np.unique(y).tolist())
        if classes != {0, 1}:
            raise DataSchemaError(f"a kNN bank needs real (0) and fake (1) vectors; got {n} with labels {classes}.")
        dim = len(mean)
        if self.standardize:
            self.mean_, self.scale_ = mean, np.sqrt(m2 / n)
            self.scale_[self.scale_ < 1e-12] = 1.0
        else:
            self.mean_, self.scale_ = np.zeros(dim), np.ones(dim)
        bank = np.empty((n, dim), np.float32)  # pass 2: the normalised bank
        labels = np.empty(n, np.int8)
        at = 0
        for X, y in chunks():
            m = len(X)
            if at + m > n:
                raise DataSchemaError("the kNN bank stream changed between its two passes (was the store written to?)")
            bank[at : at + m] = _normalise((np.asarray(X, np.float64) - self.mean_) / self.scale_)
            labels[at : at + m] = np.asarray(y)
            at += m
        if at != n:
            raise DataSchemaError("the kNN bank stream changed between its two passes (was the store written to?)")
        self.bank_, self.bank_labels_ = bank, labels
        self.n_features_in_ = dim
        self._index_cache = None
        self.platt_ = np.array([1.0, 0.0])
        rows = np.arange(n)
        if n > self.platt_sample:
            rows = np.sort(np.random.default_rng(0).choice(n, self.platt_sample, replace=False))
        loo = self._scores(self.bank_[rows].astype(np.float64), self_rows=rows)
        target = labels[rows].astype(int)
        if np.unique(target).size == 2 and np.ptp(loo) > 0:
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=100.0).fit(loo[:, None], target)
            slope = float(lr.coef_[0, 0])
            self.platt_ = np.array([slope, float(lr.intercept_[0])]) if slope > 0 else np.array([1.0, 0.0])

    def load_state_dict(self, state: dict[str, np.ndarray]) -> Detector:
        self._index_cache = None
        return super().load_state_dict(state)

    # -- search ------------------------------------------------------------------------------------------------
    def index_kind(self) -> str:
        """How this bank is searched: ``"numpy"``, ``"flat"`` (faiss, exact), ``"hnsw"`` or ``"ivf"``."""
        n = len(self.bank_)
        if n < self.faiss_min_bank:
            return "numpy"
        try:
            import faiss  # noqa: F401
        except ImportError:
            logger.warning("a kNN bank of %d vectors without faiss is slow: pip install 'gendetect[knn]'", n)
            return "numpy"
        return self.faiss_approx if n >= self.faiss_approx_min_bank else "flat"

    def _use_faiss(self) -> bool:
        return self.index_kind() != "numpy"

    def _indexes(self) -> list[tuple[np.ndarray, Any]]:
        """``[(bank rows, faiss index)]`` for the fake then the real class, built once and cached."""
        key = (id(self.bank_), len(self.bank_), self.index_kind())
        cache = getattr(self, "_index_cache", None)
        if cache is not None and cache[0] == key:
            return cache[1]
        import faiss

        kind, d = key[2], self.bank_.shape[1]
        built = []
        for cls in (1, 0):
            rows = np.flatnonzero(self.bank_labels_ == cls)
            vectors = np.ascontiguousarray(self.bank_[rows], dtype=np.float32)
            if kind == "hnsw":
                index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efSearch = max(64, 4 * (self.k + 1))
            elif kind == "ivf":
                nlist = int(max(1, min(4 * np.sqrt(len(rows)), len(rows) // 39)))
                index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
                sample = vectors
                if len(rows) > 256 * nlist:
                    sample = vectors[np.random.default_rng(0).choice(len(rows), 256 * nlist, replace=False)]
                index.train(sample)
                index.nprobe = max(16, nlist // 8)
            else:
                index = faiss.IndexFlatIP(d)
            for start in range(0, len(vectors), 65_536):  # add in blocks: bounded temporary memory
                index.add(vectors[start : start + 65_536])
            built.append((rows, index))
        self._index_cache = (key, built)
        return built

    def _scores_faiss(self, Q: np.ndarray, self_rows: np.ndarray | None) -> np.ndarray:
        means = []
        for rows, index in self._indexes():
            kk = min(self.k + int(self_rows is not None), len(rows))
            sims, ids = index.search(np.ascontiguousarray(Q, dtype=np.float32), kk)
            sims = sims.astype(np.float64)
            sims[ids < 0] = -np.inf  # approximate indexes may return fewer than kk neighbours
            if self_rows is not None:  # query i is bank row self_rows[i]: drop it from its own neighbours
                sims[(rows[np.maximum(ids, 0)] == self_rows[:, None]) & (ids >= 0)] = -np.inf
            means.append(self._topk_mean(sims))
        return means[0] - means[1]

    def _scores(self, Q: np.ndarray, self_rows: np.ndarray | None = None) -> np.ndarray:
        if self._use_faiss():
            return self._scores_faiss(Q, self_rows)
        out = np.empty(len(Q))
        fake = self.bank_labels_ == 1
        bank = np.asarray(self.bank_, np.float64)
        for start in range(0, len(Q), self.batch_size):
            sims = Q[start : start + self.batch_size] @ bank.T
            if self_rows is not None:
                sims[np.arange(sims.shape[0]), self_rows[start : start + len(sims)]] = -np.inf
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

    def __getstate__(self) -> dict[str, Any]:  # faiss indexes are rebuilt after unpickling, never pickled
        state = super().__getstate__()
        state.pop("_index_cache", None)
        return state


def knn_from_store(store: Any, keys: Sequence[str], labels: Sequence[int], **params: Any) -> KNNDetector:
    """Fit a :class:`KNNDetector` by streaming a :class:`~gendetect.features.store.FeatureStore`.

    Args:
        store: the feature store holding the bank's vectors.
        keys: store keys of the labelled images (``gendetect.features.featurize.store_key`` of each record).
        labels: their labels, 1 = fake, 0 = real.
        params: :class:`KNNDetector` hyper-parameters.

    Keys missing from the store are ignored (extract them first: ``gendetect features extract``); a key listed
    twice counts once, with its first label.
    """
    wanted: dict[str, int] = {}
    for key, label in zip(keys, labels):
        if key:
            wanted.setdefault(key, int(label))

    shards = list(store.iter_shards())  # one listing for both passes (memory-mapped: nothing is read yet)

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        seen: set[str] = set()
        for shard_keys, X in shards:
            take = []
            for i, key in enumerate(shard_keys):
                if key in wanted and key not in seen:
                    seen.add(key)
                    take.append(i)
            if take:
                yield np.asarray(X[take], np.float64), np.array([wanted[shard_keys[i]] for i in take], np.int8)

    detector = KNNDetector(**params).fit_stream(chunks)
    logger.info(
        "kNN bank of %d vectors streamed from %s (%s search)", len(detector.bank_), store.dir, detector.index_kind()
    )
    return detector
