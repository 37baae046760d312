"""A detector over whole-image tiles: a per-tile detector, and the image's score as the mean of its tiles'.

Its input rows are the packed vectors of the ``tiles`` extractor (:class:`gendetect.features.periodic.
TiledFeatures`): ``max_tiles`` slots of ``tile_width`` values (box, signal flag, texture, flat share, features).
``fit`` trains the ``base`` detector on every tile with signal, each weighted 1 / (tiles with signal in its
image), so a large image counts as much as a small one. ``decision_function`` is the **mean of the tile
log-odds** over the tiles with signal: a mean, not a maximum, so a photo with many tiles is not more likely to be
called fake than a small one. ``aggregate`` names the rule (:data:`AGGREGATES`): ``"mean"`` (the default),
``"median"`` or ``"trimmed"`` (the mean of the middle half of the tiles, all tiles when there are fewer than 4),
both robust to a few tiles that look unlike the rest (a sky, a sharpened edge). An image without any tile with
signal scores 0 (P(fake) = 0.5); the pipeline calls such an image ``uncertain`` with a reason instead of using
that score.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from gendetect.detectors.base import DETECTORS, Detector
from gendetect.errors import DataSchemaError, ModelFormatError

_PREFIX = "base."
AGGREGATES = ("mean", "median", "trimmed")


def aggregate_logits(z: np.ndarray, image: np.ndarray, n_images: int, rule: str = "mean") -> np.ndarray:
    """The image log-odds from its tiles' log-odds ``z`` ``(n,)`` (tile ``i`` belongs to image ``image[i]``) by
    ``rule`` (:data:`AGGREGATES`): ``(n_images,)``, NaN for an image without tiles.

    Example:
        >>> aggregate_logits(np.array([1.0, 2.0, 9.0, -1.0]), np.array([0, 0, 0, 2]), 3, "median").tolist()
        [2.0, nan, -1.0]
    """
    if rule not in AGGREGATES:
        raise ValueError(f"unknown tile aggregate {rule!r}; valid: {', '.join(AGGREGATES)}")
    z, image = np.asarray(z, np.float64), np.asarray(image, np.int64)
    out = np.full(n_images, np.nan)
    if rule == "mean":
        counts = np.bincount(image, minlength=n_images)
        sums = np.bincount(image, weights=z, minlength=n_images)
        np.divide(sums, counts, out=out, where=counts > 0)
        return out
    for i, t in tiles_by_image(z, image, n_images):
        if rule == "median":
            out[i] = float(np.median(t))
        else:
            k = len(t) // 4 if len(t) >= 4 else 0
            out[i] = float(t[k : len(t) - k].mean())
    return out


def tiles_by_image(z: np.ndarray, image: np.ndarray, n_images: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(image, its tiles' log-odds sorted ascending)`` for every image with tiles, in image order: what a tile
    rule other than the mean reads (:func:`aggregate_logits`, ``benchmarks/tile_aggregation_study.py``).

    Example:
        >>> [(i, t.tolist()) for i, t in tiles_by_image(np.array([2.0, 1.0, 5.0]), np.array([2, 0, 0]), 3)]
        [(0, [1.0, 5.0]), (2, [2.0])]
    """
    z, image = np.asarray(z, np.float64), np.asarray(image, np.int64)
    counts = np.bincount(image, minlength=n_images)
    starts = np.r_[0, np.cumsum(counts)]
    zs = z[np.lexsort((z, image))]  # tiles grouped by image, ascending log-odds within each
    for i in np.nonzero(counts)[0]:
        yield int(i), zs[starts[i] : starts[i + 1]]


@DETECTORS.register("tiled")
class TiledDetector(Detector):
    """Mean tile log-odds of a per-tile ``base`` detector (see the module docstring).

    Args:
        base: the per-tile detector's config, ``{"name": "hgb", "params": {...}}``.
        tile_width: values per tile slot (the extractor's ``tile_width``); the feature columns start after the
            7 tile-meta values.
        aggregate: how the tiles' log-odds make the image's (:data:`AGGREGATES`; :func:`aggregate_logits`).
    """

    name = "tiled"

    def __init__(self, base: dict[str, Any] | None = None, tile_width: int = 0, aggregate: str = "mean") -> None:
        self.base = base
        self.tile_width = tile_width
        self.aggregate = aggregate

    @classmethod
    def from_fitted(cls, base: Detector, tile_width: int, max_tiles: int, aggregate: str = "mean") -> TiledDetector:
        """Wrap a per-tile detector already fitted on tile feature rows (as ``scripts/train_default.py`` does)."""
        det = cls(base=base.get_config(), tile_width=tile_width, aggregate=aggregate)
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

    def image_decision(self, tile_logits: np.ndarray) -> float:
        """The log-odds of one image from the log-odds of its tiles with signal (``aggregate``'s rule)."""
        z = np.asarray(tile_logits, np.float64)
        return float(aggregate_logits(z, np.zeros(len(z), np.int64), 1, self.aggregate)[0])

    # -- Detector ---------------------------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"unknown tile aggregate {self.aggregate!r}; valid: {', '.join(AGGREGATES)}")
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
        feats, image, _ = self._tiles(X)
        z = self.base_.decision_function(feats) if len(feats) else np.zeros(0)
        return np.nan_to_num(aggregate_logits(z, image, len(X), self.aggregate), nan=0.0)

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
