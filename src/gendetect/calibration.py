"""Post-hoc calibration of P(fake): temperature scaling or isotonic regression, fitted on validation scores.

A calibrator maps the detector's P(fake) to a calibrated P(fake). It is fitted on out-of-fold scores during
training (never on test labels), applied before the threshold, and saved with the model (config + arrays).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from gendetect.errors import DataSchemaError

_EPS = 1e-7


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


class Calibrator:
    name: ClassVar[str] = ""

    def fit(self, p: np.ndarray, y: np.ndarray) -> Calibrator:
        raise NotImplementedError

    def __call__(self, p: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "params": {}}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}


class TemperatureCalibrator(Calibrator):
    """``P' = sigmoid(logit(P) / T)`` with ``T`` minimising the log-loss on validation scores."""

    name = "temperature"

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = float(temperature)

    def fit(self, p: np.ndarray, y: np.ndarray) -> TemperatureCalibrator:
        from scipy.optimize import minimize_scalar

        z, y = _logit(p), np.asarray(y, dtype=np.float64)

        def nll(log_t: float) -> float:
            q = 1 / (1 + np.exp(-z / np.exp(log_t)))
            q = np.clip(q, _EPS, 1 - _EPS)
            return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

        self.temperature = float(np.exp(minimize_scalar(nll, bounds=(-5, 5), method="bounded").x))
        return self

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-_logit(p) / self.temperature))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "params": {"temperature": self.temperature}}


class IsotonicCalibrator(Calibrator):
    """Monotone step function fitted by isotonic regression; stored as its breakpoints ``x_``, ``y_``."""

    name = "isotonic"

    def __init__(self) -> None:
        self.x_ = np.array([0.0, 1.0])
        self.y_ = np.array([0.0, 1.0])

    def fit(self, p: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        self.x_, self.y_ = np.asarray(iso.X_thresholds_, np.float64), np.asarray(iso.y_thresholds_, np.float64)
        return self

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(p, np.float64), self.x_, self.y_)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"calibration.x": self.x_, "calibration.y": self.y_}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> IsotonicCalibrator:
        self.x_, self.y_ = state["calibration.x"], state["calibration.y"]
        return self


CALIBRATORS = {"temperature": TemperatureCalibrator, "isotonic": IsotonicCalibrator}


def create_calibrator(name: str) -> Calibrator:
    try:
        return CALIBRATORS[name]()
    except KeyError:
        raise DataSchemaError(f"Unknown calibration {name!r}; valid: {', '.join(CALIBRATORS)} (or none).") from None


def calibrator_from_config(config: dict[str, Any] | None, state: dict[str, np.ndarray]) -> Calibrator | None:
    if not config:
        return None
    cal = CALIBRATORS[config["name"]](**config.get("params", {}))
    if isinstance(cal, IsotonicCalibrator):
        cal.load_state_dict(state)
    return cal
