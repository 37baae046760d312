"""The :class:`FeatureExtractor` interface and the ``EXTRACTORS`` registry.

An extractor turns decoded RGB images of *any* size into fixed-length float32 vectors. The core extractors are
pure numpy (no torch); torch-based ones (CLIP, ImageNet backbones, diffusion noise) subclass the same interface in
optional modules registered lazily, so ``import gendetect`` never imports torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image

from gendetect.config import Configurable
from gendetect.registry import Registry


class FeatureExtractor(Configurable, ABC):
    """Image -> ``(dim,)`` float32 feature vector.

    Subclasses implement :meth:`extract_one` (or override :meth:`extract_batch` when batching pays, as for
    neural networks). Images arrive as PIL ``RGB`` images as decoded by :func:`gendetect.imageio.load_image`:
    EXIF orientation applied, any mode converted, never resized.
    """

    dim: int
    uses_captions: bool = False  # True when features also depend on the image's caption (see below)

    def extract_batch_with_captions(self, images: Sequence[Image.Image], captions: Sequence[str | None]) -> np.ndarray:
        """Features of images paired with their captions (``None`` when an image has none).

        Image-only extractors ignore the captions; caption-aware ones (``uses_captions``) override this.
        """
        return self.extract_batch(images)

    @abstractmethod
    def extract_one(self, image: Image.Image) -> np.ndarray:
        """Features of one RGB image: ``(dim,)`` float32."""

    def extract_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Features of a batch: ``(N, dim)`` float32."""
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([np.asarray(self.extract_one(im), np.float32) for im in images])

    def extract(self, images: Iterable[Image.Image], batch_size: int = 64) -> Iterator[np.ndarray]:
        """Yield ``(n <= batch_size, dim)`` float32 arrays for a stream of images."""
        batch: list[Image.Image] = []
        for im in images:
            batch.append(im)
            if len(batch) == batch_size:
                yield self.extract_batch(batch)
                batch = []
        if batch:
            yield self.extract_batch(batch)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_config()["params"].items())
        return f"{type(self).__name__}({params})"


EXTRACTORS: Registry[FeatureExtractor] = Registry("extractor")


def create_extractor(name: str, **params: Any) -> FeatureExtractor:
    """Build a registered extractor, e.g. ``create_extractor("spectrum", crop=256)``."""
    return EXTRACTORS.create(name, **params)


def list_extractors(pattern: str = "*") -> list[str]:
    return EXTRACTORS.list(pattern)
