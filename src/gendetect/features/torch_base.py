"""Shared machinery of the torch extractors (CLIP, ImageNet backbones): preprocessing, batching, devices.

Subclasses implement ``_build()`` (returning the network, its input size, mean, std and the model's own
transform) and ``_embed(pixels)``. Preprocessing comes from the model's config, never hand-set; ``center-crop``
takes the centre of the image at the model's input size without resizing (reflect-padded when smaller).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from gendetect.errors import require
from gendetect.features.base import FeatureExtractor
from gendetect.features.rgb import center_crop

PREPROCESS = ("center-crop", "model")


def require_torch(purpose: str = "this") -> Any:
    """The ``torch`` module, or a :class:`~gendetect.errors.MissingDependencyError` naming the 'clip' extra."""
    return require("torch", "clip", purpose)


def require_diffusers(purpose: str = "this") -> Any:
    """The ``diffusers`` module (with torch), or a :class:`~gendetect.errors.MissingDependencyError` naming the
    'diffusion' extra that installs it."""
    require("torch", "diffusion", purpose)
    return require("diffusers", "diffusion", purpose)


class TorchExtractor(FeatureExtractor):
    """A frozen network as a feature extractor. Subclasses store ``preprocess``, ``device``, ``batch_size``."""

    batched = True
    preprocess: str
    device: str
    batch_size: int

    def _build(self) -> tuple[Any, tuple[int, int], Sequence[float], Sequence[float], Any]:
        """``(network in eval mode, (H, W), mean, std, the model's own transform)``."""
        raise NotImplementedError

    def _embed(self, pixels: Any) -> Any:
        """``(N, dim)`` float tensor for a preprocessed batch already on the device."""
        raise NotImplementedError

    def _feature_dim(self, embed_dim: int) -> int:
        """Length of the feature vector given the network's output size (subclasses that append more override)."""
        return embed_dim

    def _load(self) -> Any:
        if getattr(self, "_net", None) is None:
            torch = require_torch()
            if self.preprocess not in PREPROCESS:
                raise ValueError(f"preprocess must be one of {PREPROCESS}, got {self.preprocess!r}")
            net, size, mean, std, transform = self._build()
            self._size, self._transform = size, transform
            self._mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
            self._std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
            self._net = net
            with torch.no_grad():
                self.dim = self._feature_dim(
                    int(self._embed(self._pixels_on_device(torch.zeros(1, 3, *size))).shape[-1])
                )
        return self._net

    def _pixels_on_device(self, pixels: Any) -> Any:
        param = next(self._net.parameters())
        return pixels.to(self.device, dtype=param.dtype)

    def to_tensor(self, image: Image.Image) -> Any:
        """The network input for one image: ``(3, H, W)`` float tensor, per ``preprocess``."""
        torch = require_torch()
        self._load()
        if self.preprocess == "model":
            return self._transform(image)
        x = torch.from_numpy(center_crop(image, self._size).astype(np.float32) / 255.0)
        return (x.permute(2, 0, 1) - self._mean) / self._std

    def forward(self, pixels: Any) -> np.ndarray:
        """Features of a preprocessed batch ``(N, 3, H, W)``: the raw forward pass benchmarks compare with."""
        torch = require_torch()
        self._load()
        with torch.no_grad():
            out = self._embed(self._pixels_on_device(pixels)).float()
        return out.cpu().numpy().astype(np.float32)

    def extract_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        torch = require_torch()
        self._load()
        if not images:
            return np.zeros((0, self.dim), np.float32)
        chunks = [images[i : i + self.batch_size] for i in range(0, len(images), self.batch_size)]
        return np.concatenate([self.forward(torch.stack([self.to_tensor(im) for im in c])) for c in chunks])

    def extract_one(self, image: Image.Image) -> np.ndarray:
        return self.extract_batch([image])[0]

    def __getstate__(self) -> dict[str, Any]:  # worker processes rebuild the network from the config
        return {k: v for k, v in self.__dict__.items() if k not in ("_net", "_transform", "_tokenizer")}
