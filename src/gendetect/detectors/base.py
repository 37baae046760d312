"""The :class:`Detector` interface (scikit-learn contract, label 1 == fake) and the ``DETECTORS`` registry.

A fitted detector is persisted as ``config.json`` (name, hyper-parameters, fitted metadata, provenance) plus
``weights.safetensors`` (its arrays). Nothing is pickled, so a saved model can be inspected and loaded safely.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import validate_data

from gendetect.errors import DataSchemaError, ModelFormatError, NotFittedError
from gendetect.provenance import provenance
from gendetect.registry import Registry

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


class Detector(ClassifierMixin, BaseEstimator, ABC):
    """Binary real/fake classifier on feature vectors.

    Follows scikit-learn: ``__init__`` only stores hyper-parameters; ``fit`` returns ``self`` and sets attributes
    ending in ``_``; ``classes_`` holds the two labels in sorted order and ``decision_function`` is positive for
    ``classes_[1]``. With ``y`` in ``{0, 1}`` (gendetect's convention) ``classes_[1] == 1 == fake``.

    Subclasses implement :meth:`_fit` (on validated float arrays and a 0/1 target) and :meth:`_decision`, and
    list the names of their fitted arrays in ``_state_arrays``.
    """

    name: ClassVar[str] = ""
    _state_arrays: ClassVar[tuple[str, ...]] = ()

    # -- scikit-learn API ------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, *, groups: Any = None) -> Detector:
        """Fit on ``X`` ``(N, dim)`` and binary labels ``y`` (1 = fake). ``groups`` is accepted for API symmetry."""
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=False)
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"{type(self).__name__} needs class labels (1 = fake, 0 = real); got a {kind} target.")
        if kind == "multiclass":
            raise ValueError(
                f"Only binary classification is supported. Got classes {np.unique(y)!r}; use 1 = fake, 0 = real."
            )
        if np.unique(y).size < 2:
            raise ValueError(
                f"Only one class present in y ({np.unique(y)!r}); need both real (0) and fake (1) examples."
            )
        self.classes_ = np.unique(y)
        target = (y == self.classes_[1]).astype(np.float64)
        self._fit(X, target)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of fake ``(N,)`` float64: positive means ``classes_[1]`` (fake); ``predict_proba`` is its
        sigmoid."""
        self._check_fitted()
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._decision(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(N, 2)`` probabilities, columns in ``classes_`` order (column 1 = P(fake))."""
        p = _sigmoid(self.decision_function(X))
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X: Any) -> np.ndarray:
        decision = self.decision_function(X)
        return self.classes_[(decision > 0).astype(int)]

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    # -- to implement ------------------------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        """Learn from ``X`` ``(N, dim)`` float64 and ``target`` ``(N,)`` in {0., 1.}."""

    @abstractmethod
    def _decision(self, X: np.ndarray) -> np.ndarray:
        """``(N,)`` float64 log-odds of fake."""

    # -- persistence -------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or Detector.load() first.")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.get_params(deep=False)}

    def state_dict(self) -> dict[str, np.ndarray]:
        """The fitted arrays, as saved to safetensors."""
        self._check_fitted()
        state = {k: np.ascontiguousarray(getattr(self, k)) for k in self._state_arrays}
        state["classes_"] = np.asarray(self.classes_)
        state["n_features_in_"] = np.asarray([self.n_features_in_], dtype=np.int64)
        if state["classes_"].dtype.kind in "OUS":
            raise DataSchemaError("Only numeric class labels can be saved; train with y in {0, 1} (1 = fake).")
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> Detector:
        missing = [k for k in (*self._state_arrays, "classes_", "n_features_in_") if k not in state]
        if missing:
            raise ModelFormatError(f"{type(self).__name__} weights lack {missing}; the file is not from this detector.")
        for k in self._state_arrays:
            setattr(self, k, state[k])
        self.classes_ = state["classes_"]
        self.n_features_in_ = int(state["n_features_in_"][0])
        return self

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` + ``weights.safetensors`` into directory ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file(self.state_dict(), str(path / WEIGHTS_FILE))
        config = {**self.get_config(), "provenance": provenance()}
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Detector:
        """Load any registered detector saved with :meth:`save` (dispatches on ``config["name"]``)."""
        path = Path(path)
        for required in (CONFIG_FILE, WEIGHTS_FILE):
            if not (path / required).is_file():
                raise ModelFormatError(f"{path} is not a saved detector: {required} is missing.")
        try:
            config = json.loads((path / CONFIG_FILE).read_text())
            state = load_file(str(path / WEIGHTS_FILE))
        except (json.JSONDecodeError, OSError, ValueError) as e:
            raise ModelFormatError(f"{path} is not a readable saved detector: {e}") from e
        return detector_from_config(config).load_state_dict(state)


DETECTORS: Registry[Detector] = Registry("detector")


def create_detector(name: str, **params: Any) -> Detector:
    """Build a registered detector, e.g. ``create_detector("logistic", C=0.1)``."""
    return DETECTORS.create(name, **params)


def list_detectors(pattern: str = "*") -> list[str]:
    return DETECTORS.list(pattern)


def detector_from_config(config: dict[str, Any]) -> Detector:
    """An unfitted detector from ``{"name": ..., "params": {...}}``."""
    try:
        name = config["name"]
    except KeyError as e:
        raise ModelFormatError("Detector config has no 'name'.") from e
    return DETECTORS.get(name)(**config.get("params", {}))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


class _Standardizer:
    """Fit/apply feature standardisation stored as plain arrays ``mean_``/``scale_`` on the owner."""

    @staticmethod
    def fit(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale < 1e-12] = 1.0
        return mean, scale
