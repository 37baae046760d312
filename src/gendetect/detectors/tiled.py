"""A detector over whole-image tiles: a per-tile detector, and the image's score as the mean of its tiles'.

Its input rows are the packed vectors of the ``tiles`` extractor (:class:`gendetect.features.periodic.
TiledFeatures`): ``max_tiles`` slots of ``tile_width`` values (box, signal flag, texture, flat share, features).
``fit`` trains the ``base`` detector on every tile with signal, each weighted 1 / (tiles with signal in its
image), so a large image counts as much as a small one. ``decision_function`` is the **mean of the tile
log-odds** over the tiles with signal: a mean, not a maximum, so a photo with many tiles is not more likely to be
called fake than a small one. An image without any tile with signal scores 0 (P(fake) = 0.5); the pipeline calls
such an image ``uncertain`` with a reason instead of using that score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gendetect.detectors.base import DETECTORS, Detector
from gendetect.errors import DataSchemaError, ModelFormatError

_PREFIX = "base."


@DETECTORS.register("tiled")
class TiledDetector(Detector):
    """Mean tile log-odds of a per-tile ``base`` detector (see the module docstring).

    Args:
        base: the per-tile detector's config, ``{"name": "hgb", "params": {...}}``.
        tile_width: values per tile slot (the extractor's ``tile_width``); the feature columns start after the
            7 tile-meta values.
    """

    name = "tiled"

    def __init__(self, base: dict[str, Any] | None = None, tile_width: int = 0) -> None:
        self.base = base
        self.tile_width = tile_width

    @classmethod
    def from_fitted(cls, base: Detector, tile_width: int, max_tiles: int) -> TiledDetector:
        """Wrap a per-tile detector already fitted on tile feature rows (as ``scripts/train_default.py`` does)."""
        det = cls(base=base.get_config(), tile_width=tile_width)
        det.base_ = base
        det.classes_ = np.asarray([0, 1])
        det.n_features_in_ = int(tile_width * max_tiles)
        return det

    # -- tiles ------------------------------------------------------------------------------------------------
    def _tiles(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(features of tiles with signal, their image index, the image's count of such tiles)``."""
        from gendetect.features.periodic import TILE_META

        if self.tile_width <= len(TILE_META) or X.shape[1] % self.tile_width:
            raise DataSchemaError(
                f"tiled detector: rows of {X.shape[1]} values are not slots of tile_width={self.tile_width}; use "
                "the 'tiles' extractor and set tile_width to its tile_width."
            )
        slots = X.reshape(len(X), -1, self.tile_width)
        signal = slots[:, :, 4] > 0.5
        image, _ = np.nonzero(signal)
        counts = signal.sum(axis=1)
        return slots[signal][:, len(TILE_META) :], image, counts

    def tile_decision(self, rows: np.ndarray) -> np.ndarray:
        """Log-odds of fake of each tile row with signal ``(n, tile_width)`` -> ``(n,)``."""
        from gendetect.features.periodic import TILE_META

        self._check_fitted()
        return self.base_.decision_function(np.asarray(rows, np.float64)[:, len(TILE_META) :])

    # -- Detector ---------------------------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        feats, image, counts = self._tiles(X)
        if not len(feats):
            raise DataSchemaError("tiled detector: no training image has a tile with forensic signal")
        y = target[image].astype(int)
        if len(np.unique(y)) < 2:
            raise DataSchemaError("tiled detector: the tiles with signal are all of one class")
        self.base_ = DETECTORS.from_config(self.base or {"name": "hgb", "params": {}})
        weight = 1.0 / counts[image]
        try:
            self.base_.fit(feats, y, sample_weight=weight)
        except TypeError:  # a base detector without per-row weights
            self.base_.fit(feats, y)

    def _decision(self, X: np.ndarray) -> np.ndarray:
        feats, image, counts = self._tiles(X)
        z = self.base_.decision_function(feats) if len(feats) else np.zeros(0)
        sums = np.bincount(image, weights=z, minlength=len(X))
        return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)

    # -- persistence ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        state = {_PREFIX + k: v for k, v in self.base_.state_dict().items()}
        state["classes_"] = np.asarray(self.classes_)
        state["n_features_in_"] = np.asarray([self.n_features_in_], dtype=np.int64)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> TiledDetector:
        base_state = {k[len(_PREFIX) :]: v for k, v in state.items() if k.startswith(_PREFIX)}
        if not base_state or "classes_" not in state:
            raise ModelFormatError("tiled detector weights lack the base detector's arrays ('base.*').")
        self.base_ = DETECTORS.from_config(self.base or {"name": "hgb", "params": {}}).load_state_dict(base_state)
        self.classes_ = state["classes_"]
        self.n_features_in_ = int(state["n_features_in_"][0])
        return self
