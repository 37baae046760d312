"""The :class:`Detector` interface (scikit-learn contract, label 1 == fake) and the ``DETECTORS`` registry.

A fitted detector is persisted as ``config.json`` (name, hyper-parameters, fitted metadata, provenance) plus
``model.safetensors`` (its arrays; folders saved with the former name ``weights.safetensors`` still load). Nothing is
pickled, so a saved model can be inspected and loaded safely. The config is the :class:`~gendetect.config.
Configurable` one shared by every component (``{"name", "params"}`` from the ``__init__`` arguments, rebuilt by
``DETECTORS.from_config``); what ``fit`` learns lives in attributes ending in ``_``.

A detector declares what it needs from the shared ``fit``/``decision_function`` instead of re-implementing them:
``input_dtype`` (the dtype of the rows its ``_fit``/``_decision`` receive: float32 for image-sized rows) and
``validates_itself`` (it holds out its own validation split, so training fits it once; see :meth:`Detector.held_out`).

Detectors follow scikit-learn's estimator contract (``get_params``/``set_params``, ``clone``, the estimator checks)
without importing scikit-learn: it is imported by ``fit`` and by detectors whose models need it, so that loading a
saved model and scoring with it costs numpy alone (see issue 17: scikit-learn, scipy and pandas were 90% of a
one-image scan).
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from gendetect.atomic import user_mode
from gendetect.config import CONFIG_FILE, WEIGHTS_FILE, Configurable, weights_file
from gendetect.errors import DataSchemaError, ModelFormatError, NotFittedError
from gendetect.provenance import provenance
from gendetect.registry import Registry


class Detector(Configurable, ABC):
    """Binary real/fake classifier on feature vectors.

    Follows scikit-learn: ``__init__`` only stores hyper-parameters; ``fit`` returns ``self`` and sets attributes
    ending in ``_``; ``classes_`` holds the two labels in sorted order and ``decision_function`` is positive for
    ``classes_[1]``. With ``y`` in ``{0, 1}`` (gendetect's convention) ``classes_[1] == 1 == fake``.

    Subclasses implement :meth:`_fit` (on validated ``input_dtype`` arrays and a 0/1 target) and :meth:`_decision`,
    and list the names of their fitted arrays in ``_state_arrays``.
    """

    name: ClassVar[str] = ""
    _state_arrays: ClassVar[tuple[str, ...]] = ()
    #: dtype of the rows :meth:`fit` and :meth:`decision_function` hand to ``_fit``/``_decision`` (float32 for
    #: image-sized rows, where float64 would double the memory)
    input_dtype: ClassVar[type[np.floating]] = np.float64

    @property
    def validates_itself(self) -> bool:
        """Whether ``fit`` holds out a validation split of its own and scores it (:meth:`held_out`).

        ``train_pipeline`` then fits the detector once and chooses the threshold on those scores, instead of
        refitting it for cross-validation (for detectors that are costly to fit). False unless a detector says so.
        """
        return False

    def held_out(self) -> tuple[np.ndarray, np.ndarray, str]:
        """``(row index (n,) int, P(fake) (n,) float64, how they were held out)`` of the validation rows that a
        self-validating detector kept out of its last ``fit``.

        Raises:
            NotFittedError: not fitted, or the detector does not validate itself.
        """
        self._check_fitted()
        if not self.validates_itself or not hasattr(self, "validation_index_"):
            raise _not_fitted(f"{type(self).__name__} holds out no validation split of its own; cross-validate it.")
        return (
            np.asarray(self.validation_index_, dtype=int),
            np.asarray(self.validation_scores_, dtype=np.float64),
            str(self.validation_scheme_),
        )

    # -- scikit-learn API ------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, *, groups: Any = None) -> Detector:
        """Fit on ``X`` ``(N, dim)`` and binary labels ``y`` (1 = fake). ``groups`` is accepted for API symmetry."""
        from sklearn.utils.multiclass import type_of_target
        from sklearn.utils.validation import validate_data

        X, y = validate_data(self, X, y, dtype=self.input_dtype, y_numeric=False)
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
        sigmoid. Rows reach ``_decision`` as ``input_dtype``."""
        self._check_fitted()
        return self._decision(self._validate_predict(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(N, 2)`` probabilities, columns in ``classes_`` order (column 1 = P(fake))."""
        p = _sigmoid(self.decision_function(X))
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X: Any) -> np.ndarray:
        decision = self.decision_function(X)
        return self.classes_[(decision > 0).astype(int)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``X``, ``y`` (scikit-learn's classifier ``score``; per-image scores are
        :meth:`decision_function`)."""
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))

    def _validate_predict(self, X: Any) -> np.ndarray:
        """``X`` as a finite ``(N, n_features_in_)`` array of ``input_dtype``.

        A plain numpy array (the scan path) is checked with numpy alone, with scikit-learn's messages; anything
        else (lists, data frames, sparse matrices) and models fitted on named columns go through scikit-learn's
        ``validate_data``, so the estimator checks see exactly its behaviour.
        """
        if type(X) is not np.ndarray or hasattr(self, "feature_names_in_") or X.dtype.kind not in "biuf":
            from sklearn.utils.validation import validate_data

            return validate_data(self, X, dtype=self.input_dtype, reset=False)
        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2D array, got {X.ndim}D array instead. Reshape your data either using "
                "array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) if it contains a "
                "single sample."
            )
        if X.shape[0] < 1:
            raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} "
                "features as input."
            )
        X = X.astype(self.input_dtype, copy=False)
        if not np.isfinite(X).all():
            what = "NaN" if np.isnan(X).any() else f"infinity or a value too large for {X.dtype!r}"
            raise ValueError(f"Input X contains {what}.")
        return X

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The hyper-parameters: the arguments of ``__init__`` (scikit-learn's rule, the names
        :meth:`~gendetect.config.Configurable.get_config` saves), sorted as scikit-learn sorts them."""
        if cls.__init__ is object.__init__:
            return []
        if any(p.kind is p.VAR_POSITIONAL for p in inspect.signature(cls.__init__).parameters.values()):
            raise RuntimeError(f"{cls.__name__}.__init__ must name its hyper-parameters (no *args).")
        return sorted(cls._param_names())

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyper-parameter names mapped to their values (scikit-learn's ``get_params``)."""
        out: dict[str, Any] = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def set_params(self, **params: Any) -> Detector:
        """Set hyper-parameters (scikit-learn's ``set_params``); returns ``self``."""
        valid = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            head, sep, sub = key.partition("__")
            if head not in valid:
                raise ValueError(
                    f"Invalid parameter {head!r} for estimator {type(self).__name__}. Valid parameters are: {valid!r}."
                )
            if sep:
                nested.setdefault(head, {})[sub] = value
            else:
                setattr(self, head, value)
        for head, sub_params in nested.items():
            getattr(self, head).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        init = inspect.signature(type(self).__init__).parameters
        changed = []
        for key in self._get_param_names():
            value = getattr(self, key, None)
            default = init[key].default if key in init else inspect.Parameter.empty
            same = default is not inspect.Parameter.empty and _same(value, default)
            if not same:
                changed.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):  # scikit-learn's Tags; only the estimator checks call this
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(multi_class=False),
        )

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
            raise _not_fitted(f"{type(self).__name__} is not fitted; call fit() or Detector.load() first.")

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
        """Write ``config.json`` + ``model.safetensors`` into directory ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file(self.state_dict(), str(path / WEIGHTS_FILE))
        user_mode(path / WEIGHTS_FILE)
        config = {**self.get_config(), "provenance": provenance()}
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Detector:
        """Load any registered detector saved with :meth:`save` (dispatches on ``config["name"]``)."""
        path = Path(path)
        weights = weights_file(path)
        for required in (path / CONFIG_FILE, weights):
            if not required.is_file():
                raise ModelFormatError(f"{path} is not a saved detector: {required.name} is missing.")
        try:
            config = json.loads((path / CONFIG_FILE).read_text())
            state = load_file(str(weights))
        except (json.JSONDecodeError, OSError, ValueError, SafetensorError) as e:
            raise ModelFormatError(
                f"{path} is not a readable saved detector: {e} (a damaged {CONFIG_FILE} or {WEIGHTS_FILE}; save or "
                "copy the model again)"
            ) from e
        return DETECTORS.from_config(config).load_state_dict(state)


DETECTORS: Registry[Detector] = Registry("detector")


def create_detector(name: str, **params: Any) -> Detector:
    """Build a registered detector, e.g. ``create_detector("logistic", C=0.1)``."""
    return DETECTORS.create(name, **params)


def list_detectors(pattern: str = "*") -> list[str]:
    return DETECTORS.list(pattern)


@functools.cache
def _sklearn_not_fitted_error() -> type[NotFittedError]:
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError

    return type("NotFittedError", (NotFittedError, SklearnNotFittedError), {"__module__": NotFittedError.__module__})


def _not_fitted(message: str) -> NotFittedError:
    """A :class:`~gendetect.errors.NotFittedError`, which is also scikit-learn's ``NotFittedError`` whenever
    scikit-learn is loaded (whoever catches that class has imported it), without importing scikit-learn here."""
    if "sklearn.exceptions" in sys.modules:
        return _sklearn_not_fitted_error()(message)
    return NotFittedError(message)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or (type(a) is type(b) and a == b))
    except (TypeError, ValueError):  # arrays and other values without a plain truth value
        return False


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
