"""Post-hoc calibration of P(fake): temperature scaling or isotonic regression, fitted on validation scores.

A calibrator maps the detector's P(fake) to a calibrated P(fake). It is fitted on out-of-fold scores during
training (never on test labels), applied before the threshold, and saved with the model.

Calibrators are components like extractors and detectors (:class:`~gendetect.config.Configurable`, built by the
:data:`CALIBRATORS` registry): the config holds only the ``__init__`` arguments, what ``fit`` learns lives in
attributes ending in ``_`` and is saved as arrays (``calibration.*`` in the model's ``model.safetensors``). Models
saved before this layout kept the learned temperature in the config (``{"name": "temperature", "params":
{"temperature": T}}``); they still load, with the same scores.

Example:
    >>> import numpy as np
    >>> cal = CALIBRATORS.create("temperature").fit(np.array([0.1, 0.4, 0.6, 0.9]), np.array([0, 1, 0, 1]))
    >>> cal.get_config()
    {'name': 'temperature', 'params': {}}
    >>> sorted(cal.state_dict())
    ['calibration.temperature']
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from gendetect.config import Configurable
from gendetect.errors import ModelFormatError, NotFittedError
from gendetect.registry import Registry

_EPS = 1e-7


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


class Calibrator(Configurable, ABC):
    """P(fake) ``(N,)`` -> calibrated P(fake) ``(N,)`` float64, fitted on validation scores and labels (1 = fake).

    Subclasses implement :meth:`fit` (setting attributes ending in ``_``) and :meth:`_apply`, and map each learned
    attribute to its key in the model's arrays in ``_state_arrays``.
    """

    name: ClassVar[str] = ""
    _state_arrays: ClassVar[dict[str, str]] = {}  # learned attribute -> key in model.safetensors

    @abstractmethod
    def fit(self, p: np.ndarray, y: np.ndarray) -> Calibrator:
        """Learn the map from validation P(fake) ``p`` ``(N,)`` and labels ``y`` ``(N,)`` (1 = fake); returns self."""

    @abstractmethod
    def _apply(self, p: np.ndarray) -> np.ndarray:
        """The calibrated ``(N,)`` float64 P(fake) of ``p`` (fitted state present)."""

    def __call__(self, p: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self._apply(p)

    def _check_fitted(self) -> None:
        missing = [a for a in self._state_arrays if not hasattr(self, a)]
        if missing:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load it with its model first.")

    def state_dict(self) -> dict[str, np.ndarray]:
        """The learned arrays, saved beside the detector's in the model's ``model.safetensors``."""
        self._check_fitted()
        return {key: np.atleast_1d(np.asarray(getattr(self, a), np.float64)) for a, key in self._state_arrays.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> Calibrator:
        """Restore the learned arrays from a model's arrays (keys of other components are ignored)."""
        missing = [key for key in self._state_arrays.values() if key not in state]
        if missing:
            raise ModelFormatError(f"the model's arrays lack {missing}, the state of its {self.name} calibration.")
        for attr, key in self._state_arrays.items():
            setattr(self, attr, np.asarray(state[key], np.float64))
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


CALIBRATORS: Registry[Calibrator] = Registry("calibration")


@CALIBRATORS.register("temperature")
class TemperatureCalibrator(Calibrator):
    """``P' = sigmoid(logit(P) / T)`` with the temperature ``T`` (``temperature_``) minimising the log-loss on
    validation scores."""

    name = "temperature"
    _state_arrays: ClassVar[dict[str, str]] = {"temperature_": "calibration.temperature"}

    def __init__(self) -> None:
        pass

    @property
    def temperature(self) -> float:
        """The learned temperature ``T`` (``temperature_`` as a float)."""
        self._check_fitted()
        return float(np.asarray(self.temperature_).ravel()[0])

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TemperatureCalibrator:
        """Also reads the former layout, where the learned temperature was a config parameter."""
        params = dict(config.get("params", {}))
        legacy = params.pop("temperature", None)
        cal = cls(**params)
        if legacy is not None:
            cal.temperature_ = float(legacy)
        return cal

    def load_state_dict(self, state: dict[str, np.ndarray]) -> TemperatureCalibrator:
        if "calibration.temperature" not in state and hasattr(self, "temperature_"):
            return self  # a model of the former layout: the temperature came with its config
        super().load_state_dict(state)
        self.temperature_ = float(np.asarray(self.temperature_).ravel()[0])
        return self

    def fit(self, p: np.ndarray, y: np.ndarray) -> TemperatureCalibrator:
        from scipy.optimize import minimize_scalar

        z, y = _logit(p), np.asarray(y, dtype=np.float64)

        def nll(log_t: float) -> float:
            q = 1 / (1 + np.exp(-z / np.exp(log_t)))
            q = np.clip(q, _EPS, 1 - _EPS)
            return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

        self.temperature_ = float(np.exp(minimize_scalar(nll, bounds=(-5, 5), method="bounded").x))
        return self

    def _apply(self, p: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-_logit(p) / self.temperature_))

    def __repr__(self) -> str:
        fitted = f"temperature_={self.temperature_:.4g}" if hasattr(self, "temperature_") else ""
        return f"TemperatureCalibrator({fitted})"


@CALIBRATORS.register("isotonic")
class IsotonicCalibrator(Calibrator):
    """Monotone step function fitted by isotonic regression; stored as its breakpoints ``x_``, ``y_``."""

    name = "isotonic"
    _state_arrays: ClassVar[dict[str, str]] = {"x_": "calibration.x", "y_": "calibration.y"}

    def __init__(self) -> None:
        pass

    def fit(self, p: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        self.x_, self.y_ = np.asarray(iso.X_thresholds_, np.float64), np.asarray(iso.y_thresholds_, np.float64)
        return self

    def _apply(self, p: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(p, np.float64), self.x_, self.y_)


def create_calibrator(name: str, **params: Any) -> Calibrator:
    """An unfitted calibrator by name (``"temperature"``, ``"isotonic"``); unknown names list the valid ones."""
    return CALIBRATORS.create(name, **params)


def list_calibrators(pattern: str = "*") -> list[str]:
    return CALIBRATORS.list(pattern)
