"""Detectors follow scikit-learn's contract, label 1 == fake, and save/load exactly without pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from gendetect.detectors import DETECTORS, Detector, create_detector, list_detectors
from gendetect.errors import ModelFormatError, NotFittedError, UnknownNameError

BUILT_IN = ["knn", "logistic", "mlp"]


def _blobs(n: int = 80, dim: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(n // 2), np.ones(n // 2)].astype(int)
    X = rng.normal(size=(n, dim)) + 1.5 * y[:, None]
    return X, y


def test_registry_lists_builtins() -> None:
    assert set(BUILT_IN) <= set(list_detectors())
    assert list_detectors("log*") == ["logistic"]


def test_unknown_detector_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError) as e:
        create_detector("logistc")
    msg = str(e.value)
    assert "Did you mean 'logistic'" in msg
    for name in BUILT_IN:
        assert name in msg


@parametrize_with_checks(
    [create_detector("logistic"), create_detector("knn", k=3), create_detector("mlp", max_iter=50)]
)
def test_sklearn_contract(estimator: Detector, check) -> None:
    check(estimator)


@pytest.mark.parametrize("name", BUILT_IN)
def test_label_one_means_fake(name: str) -> None:
    X, y = _blobs()
    det = create_detector(name).fit(X, y)
    proba = det.predict_proba(X)
    assert proba.shape == (len(y), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    # fakes (label 1, shifted +1.5) must score higher than reals
    assert proba[y == 1, 1].mean() > proba[y == 0, 1].mean() + 0.3
    assert (det.predict(X) == y).mean() > 0.8
    # decision_function is the log-odds of predict_proba's fake column
    np.testing.assert_allclose(1 / (1 + np.exp(-det.decision_function(X))), proba[:, 1], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", BUILT_IN)
def test_save_load_roundtrip_is_exact_and_pickle_free(name: str, tmp_path) -> None:
    X, y = _blobs()
    det = create_detector(name).fit(X, y)
    det.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["name"] == name and "versions" in config["provenance"]
    loaded = Detector.load(tmp_path / "m")
    assert type(loaded) is type(det)
    np.testing.assert_array_equal(loaded.decision_function(X), det.decision_function(X))


def test_unfitted_detector_raises() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        create_detector("logistic").predict_proba(np.zeros((2, 3)))


def test_multiclass_is_refused() -> None:
    X = np.random.default_rng(0).normal(size=(9, 2))
    with pytest.raises(ValueError, match="binary"):
        create_detector("logistic").fit(X, [0, 1, 2] * 3)


def test_load_missing_weights_is_clear(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"name": "logistic", "params": {}}))
    with pytest.raises(ModelFormatError, match="model.safetensors is missing"):
        Detector.load(tmp_path)


def test_a_folder_saved_with_the_former_weights_name_still_loads(tmp_path: Path) -> None:
    X, y = _blobs()
    det = create_detector("logistic").fit(X, y)
    det.save(tmp_path / "old")
    (tmp_path / "old" / "model.safetensors").rename(tmp_path / "old" / "weights.safetensors")
    np.testing.assert_array_equal(Detector.load(tmp_path / "old").decision_function(X), det.decision_function(X))


@pytest.mark.parametrize("name", BUILT_IN)
def test_config_is_the_init_arguments_and_rebuilds_through_the_registry(name: str) -> None:
    det = create_detector(name)
    config = det.get_config()
    assert config["name"] == name and set(config["params"]) == set(det.get_params(deep=False))
    rebuilt = DETECTORS.from_config(config)
    assert type(rebuilt) is type(det) and rebuilt.get_config() == config
    assert json.loads(json.dumps(config)) == config  # JSON-ready as saved
    X, y = _blobs()
    fitted = rebuilt.fit(X, y)
    assert fitted.get_config() == config  # learned state is never config: it ends in "_"
    assert all(k.endswith("_") for k in vars(fitted) if k not in config["params"] and not k.startswith("_"))


def test_from_config_errors_say_what_is_wrong() -> None:
    with pytest.raises(ModelFormatError, match="'name'"):
        DETECTORS.from_config({"params": {}})
    with pytest.raises(UnknownNameError, match="Did you mean 'logistic'"):
        DETECTORS.from_config({"name": "logistc", "params": {}})


def test_knn_is_nearest_neighbour_by_cosine() -> None:
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    y = np.array([0, 0, 1, 1])
    det = create_detector("knn", k=1).fit(X, y)
    # scaled copies have the same cosine neighbours
    assert list(det.predict(np.array([[10.0, 0.5], [0.2, 5.0]]))) == [0, 1]


def test_knn_with_faiss_matches_numpy() -> None:
    pytest.importorskip("faiss", reason="faiss-cpu is not installed")
    X, y = _blobs(n=200, dim=16, seed=3)
    exact = create_detector("knn", k=3).fit(X, y)
    with_faiss = create_detector("knn", k=3, faiss_min_bank=0).fit(X, y)
    assert with_faiss._use_faiss() and not exact._use_faiss()
    Q = np.random.default_rng(9).normal(size=(50, 16))
    np.testing.assert_allclose(with_faiss.decision_function(Q), exact.decision_function(Q), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(with_faiss.platt_, exact.platt_, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("approx", ["hnsw", "ivf"])
def test_knn_approximate_index_for_large_banks_agrees_with_exact(approx: str) -> None:
    pytest.importorskip("faiss", reason="faiss-cpu is not installed")
    X, y = _blobs(n=2000, dim=16, seed=4)
    exact = create_detector("knn", k=3).fit(X, y)
    det = create_detector("knn", k=3, faiss_min_bank=0, faiss_approx_min_bank=1000, faiss_approx=approx).fit(X, y)
    assert det.index_kind() == approx and exact.index_kind() == "numpy"
    assert create_detector("knn", faiss_min_bank=0, faiss_approx_min_bank=10**6).fit(X, y).index_kind() == "flat"
    Q = np.random.default_rng(2).normal(size=(100, 16)) + 0.75
    agree = np.mean((det.decision_function(Q) > 0) == (exact.decision_function(Q) > 0))
    assert agree > 0.95  # approximate search: nearly always the same neighbours
    first = det._indexes()
    det.decision_function(Q)
    assert det._indexes() is first  # built once, reused by later queries


def test_knn_streamed_from_the_feature_store_equals_in_memory_fit(tmp_path: Path) -> None:
    from gendetect.detectors.knn import knn_from_store
    from gendetect.features import create_extractor
    from gendetect.features.store import FeatureStore

    X, y = _blobs(n=300, dim=4, seed=5)
    X = X.astype(np.float32).astype(np.float64)  # what the store holds
    store = FeatureStore(tmp_path, create_extractor("pixel-stats"))
    store.dim = X.shape[1]
    keys = [f"sha{i}" for i in range(len(X))]
    for start in range(0, len(X), 70):  # five shards
        store.add(keys[start : start + 70], X[start : start + 70])
    assert len(store.shards()) == 5
    streamed = knn_from_store(store, keys + ["not-stored"], list(y) + [1], k=3)
    in_memory = create_detector("knn", k=3).fit(X, y)
    assert len(streamed.bank_) == len(X)
    np.testing.assert_allclose(streamed.mean_, in_memory.mean_, atol=1e-9)
    np.testing.assert_allclose(streamed.scale_, in_memory.scale_, rtol=1e-6)
    Q = np.random.default_rng(1).normal(size=(40, 4))
    np.testing.assert_allclose(streamed.decision_function(Q), in_memory.decision_function(Q), rtol=1e-4, atol=1e-4)
    with pytest.raises(Exception, match="real .0. and fake .1."):
        knn_from_store(store, keys[:3], [1, 1, 1])
