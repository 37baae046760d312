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


@pytest.fixture(scope="module")
def cocofake_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """COCOFake-style pairs; fakes differ from reals only by 2x up-sampling, captions carry no label."""
    import json

    from gendetect.data.synthetic import synthetic_image

    root = tmp_path_factory.mktemp("cocofake")
    words = ["a dog", "a red car", "two people", "a kitchen", "a beach", "a mountain"]
    captions = {}
    for i in range(12):
        pid = str(500 + i)
        # the same caption for the real and each of its fakes: captions carry no label information
        captions[pid] = [f"{words[i % 6]} seen from afar"] * 2
        (root / "real").mkdir(parents=True, exist_ok=True)
        synthetic_image("real", 64, seed=i).save(root / "real" / f"{pid}.png")
        for k in range(2):
            (root / "fake" / "gen").mkdir(parents=True, exist_ok=True)
            synthetic_image("fake", 64, seed=100 + 2 * i + k).save(root / "fake" / "gen" / f"{pid}_{k}.png")
    (root / "captions.json").write_text(json.dumps(captions))
    return root


def test_feature_comparison_and_disentangle_protocols_run_end_to_end(cocofake_tree: Path) -> None:
    pytest.importorskip("open_clip", reason="needs the tiny CLIP model (open_clip)")
    from gendetect.evaluation.protocols import ProtocolConfig, run_protocol

    tiny = {"name": "openclip", "params": {"model": "test-tiny-clip", "pretrained": "random"}}
    cmp = run_protocol(
        ProtocolConfig(
            protocol="feature-comparison",
            data=str(cocofake_tree),
            n_folds=3,
            extractors=[{"name": "npr", "params": {"crop": 64}}, tiny],
        )
    )
    rows = [r[0] for r in cmp["tables"][0]["rows"]]
    assert any(r.startswith("npr") and r.endswith("linear") for r in rows)
    assert any("openclip + text" in r for r in rows) and len(rows) == 6  # npr, openclip, openclip+text x 2 probes
    npr_linear = next(m for name, m in cmp["metrics"].items() if name.startswith("npr") and name.endswith("linear"))
    assert npr_linear["all"]["ap"] > 0.8  # the up-sampling trace is what the weight-free features see

    dis = run_protocol(
        ProtocolConfig(
            protocol="disentangle",
            data=str(cocofake_tree),
            n_folds=3,
            extractor=tiny,
            detector={"name": "disentangle", "params": {"epochs": 20}},
        )
    )
    assert set(dis["metrics"]) == {"detector (residual part)", "probe on semantic part", "probe on residual part"}
    assert 0.0 <= dis["retrieval_accuracy"] <= 1.0
