"""``pixel-stats``: a tiny, fast baseline extractor (per-channel mean, spread and residual energy).

It is no forensic detector: it exists as a cheap, deterministic reference (like llm's ``EmbedDemo``) for tests,
benchmarks of the scan machinery, and as a floor that real features must beat.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from gendetect.features.base import EXTRACTORS, FeatureExtractor


@EXTRACTORS.register("pixel-stats")
class PixelStats(FeatureExtractor):
    """12 numbers: per RGB channel the mean, standard deviation, mean |horizontal| and |vertical| difference.

    Args:
        max_side: statistics are computed on the central ``max_side`` x ``max_side`` crop (never a resize).
    """

    name = "pixel-stats"

    def __init__(self, max_side: int = 512) -> None:
        self.max_side = max_side
        self.dim = 12

    def extract_one(self, image: Image.Image) -> np.ndarray:
        w, h = image.size
        s = self.max_side
        left, top = max((w - s) // 2, 0), max((h - s) // 2, 0)
        x = np.asarray(image.crop((left, top, min(left + s, w), min(top + s, h))), dtype=np.float32) / 255.0
        dx = np.abs(np.diff(x, axis=1)).mean(axis=(0, 1)) if x.shape[1] > 1 else np.zeros(3, np.float32)
        dy = np.abs(np.diff(x, axis=0)).mean(axis=(0, 1)) if x.shape[0] > 1 else np.zeros(3, np.float32)
        return np.concatenate([x.mean(axis=(0, 1)), x.std(axis=(0, 1)), dx, dy]).astype(np.float32)
