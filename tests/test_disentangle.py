"""COCOFake's contrastive disentangling on a set with a known answer: the residual part detects, the semantic part
does not and retrieves captions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the disentangle detector trains with torch (the 'clip' extra)")

from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import cross_val_predict  # noqa: E402

from gendetect.detectors import Detector, create_detector  # noqa: E402
from gendetect.evaluation.metrics import roc_auc  # noqa: E402


def caption_paired(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows [image | caption]: the image embedding = a linear map of its caption (semantics) + a low-level
    direction for fakes + noise. Captions are drawn independently of the label: they carry no label information."""
    rng = np.random.default_rng(seed)
    d_img, d_txt = 24, 16
    t = rng.normal(size=(n, d_txt))
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    y = rng.integers(0, 2, n)
    A = rng.normal(size=(d_img, d_txt))
    v = rng.normal(size=d_img)
    img = t @ A.T * 3 + np.outer(y, v) * 0.8 + rng.normal(0, 0.3, size=(n, d_img))
    return np.hstack([img, t]), y


def test_residual_detects_semantic_does_not() -> None:
    X, y = caption_paired()
    det = create_detector("disentangle", semantic_dim=16, residual_dim=8).fit(X[:160], y[:160])
    Xte, yte = X[160:], y[160:]
    assert roc_auc(yte, det.decision_function(Xte)) > 0.9
    s, r = det.parts(X)
    probe = LogisticRegression(max_iter=2000)
    sem_auc = roc_auc(y, cross_val_predict(probe, s, y, cv=5, method="predict_proba")[:, 1])
    res_auc = roc_auc(y, cross_val_predict(probe, r, y, cv=5, method="predict_proba")[:, 1])
    assert res_auc > 0.9 and sem_auc < 0.7 and res_auc - sem_auc > 0.25
    assert det.retrieval_accuracy(Xte) > 0.5  # chance is 1/80


def test_decision_uses_the_image_alone_and_roundtrips(tmp_path: Path) -> None:
    X, y = caption_paired(n=120)
    det = create_detector("disentangle", epochs=20).fit(X, y)
    no_caption = X.copy()
    no_caption[:, X.shape[1] // 2 :] = 0
    np.testing.assert_allclose(det.decision_function(no_caption), det.decision_function(X))
    det.save(tmp_path / "d")
    np.testing.assert_array_equal(Detector.load(tmp_path / "d").decision_function(X), det.decision_function(X))


def test_odd_width_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="with_text"):
        create_detector("disentangle", epochs=1).fit(np.zeros((10, 5)), np.r_[np.zeros(5), np.ones(5)])
