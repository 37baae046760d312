"""A small multi-layer perceptron on standardised features (Coccomini et al.'s MLP on CLIP features)."""

from __future__ import annotations

import numpy as np

from gendetect.detectors.base import DETECTORS, Detector, _Standardizer


@DETECTORS.register("mlp")
class MLPDetector(Detector):
    """ReLU MLP trained with scikit-learn's ``MLPClassifier`` (Adam, L2 penalty ``alpha``).

    The fitted layers are kept as plain arrays (``W0, b0, W1, b1, ...``) and inference is a numpy forward pass, so
    a saved model needs nothing but safetensors to load. ``decision_function`` is the output logit.

    Args:
        hidden: sizes of the hidden layers.
        alpha: L2 penalty.
        max_iter: training epochs cap.
        early_stopping: hold out 10% of the training data to stop when the validation score stalls.
        random_state: seed of the weight initialisation and batching.
    """

    name = "mlp"

    def __init__(
        self,
        hidden: tuple[int, ...] | list[int] = (128,),
        alpha: float = 1e-3,
        max_iter: int = 500,
        early_stopping: bool = False,
        random_state: int = 0,
    ) -> None:
        self.hidden = hidden
        self.alpha = alpha
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.random_state = random_state

    _state_arrays = ("mean_", "scale_")

    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        from sklearn.neural_network import MLPClassifier

        self.mean_, self.scale_ = _Standardizer.fit(X)
        clf = MLPClassifier(
            hidden_layer_sizes=tuple(int(h) for h in self.hidden),
            alpha=self.alpha,
            max_iter=self.max_iter,
            early_stopping=self.early_stopping and len(X) >= 20,
            random_state=self.random_state,
        )
        clf.fit((X - self.mean_) / self.scale_, target.astype(int))
        self.n_iter_ = int(np.max(clf.n_iter_))
        self.layers_ = list(zip(clf.coefs_, clf.intercepts_))

    def state_dict(self) -> dict[str, np.ndarray]:
        state = super().state_dict()
        for i, (W, b) in enumerate(self.layers_):
            state[f"W{i}"], state[f"b{i}"] = W, b
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> MLPDetector:
        super().load_state_dict(state)
        n_layers = sum(1 for k in state if k.startswith("W") and k[1:].isdigit())
        self.layers_ = [(state[f"W{i}"], state[f"b{i}"]) for i in range(n_layers)]
        return self

    def _decision(self, X: np.ndarray) -> np.ndarray:
        h = (X - self.mean_) / self.scale_
        for i, (W, b) in enumerate(self.layers_):
            h = h @ W + b
            if i < len(self.layers_) - 1:
                h = np.maximum(h, 0.0)
        return h[:, 0]
