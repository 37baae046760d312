"""``zoo-net``: a published detector network as an extractor: its one feature is the network's logit (or, for a
feature network such as CoDE's ViT, its ``dim``-long output, which the entry's linear head reads).

The pipeline puts an identity logistic head on it (``P(fake) = sigmoid(logit)``, threshold 0.5: the papers'
decision rule), so a published CNN or ViT runs through the same scan, serve and evaluate code as every other model.
Preprocessing is the authors' test transform, from the entry's config:

* ``resize``: ``None`` (none), an int with ``resize_mode="square"`` (``Resize((r, r))``, NPR) or
  ``"short"`` (shorter side to ``r``, ``Resize(r)``, Community Forensics); bilinear, as torchvision on PIL images;
* ``crop``: ``None`` (the whole image, CNNDetection's "no crop") or a centre crop side, placed and zero-padded
  exactly as torchvision's ``CenterCrop`` (its offset rounds half to even);
* ``mean`` / ``std``: the normalisation after scaling pixels to [0, 1].

Images of different sizes (no resize, no crop) run one at a time; same-sized ones are batched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from gendetect.errors import WeightsNotFoundError
from gendetect.features.base import EXTRACTORS, FeatureExtractor

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("square", "short")


def torchvision_center_crop(arr: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` centre of an ``(H, W, C)`` array as torchvision's ``CenterCrop`` takes it: zero
    padding (left/top gets the smaller half) when the image is smaller, offset ``int(round((H - size) / 2))``."""
    h, w = arr.shape[:2]
    if h < size or w < size:
        ph, pw = max(size - h, 0), max(size - w, 0)
        arr = np.pad(arr, ((ph // 2, (ph + 1) // 2), (pw // 2, (pw + 1) // 2), (0, 0)))
        h, w = arr.shape[:2]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return arr[top : top + size, left : left + size]


@EXTRACTORS.register("zoo-net")
class ZooNetExtractor(FeatureExtractor):
    """The output of a published detector network: ``(dim,)`` float32 per image (a logit when ``dim`` is 1).

    Args:
        arch: a network in :data:`gendetect.zoo.nets.NETS` (``npr-resnet``, ``cnndetection-resnet``, ``commfor-vit``).
        weights: the checkpoint file, in the official format or converted (``network.safetensors``). Required:
            there are no random weights.
        arch_params: keyword arguments of the architecture (depth, timm model name).
        resize: side to resize to, or None.
        resize_mode: ``"square"`` or ``"short"`` (see the module docstring).
        crop: centre-crop side, or None for the whole image.
        mean: per-channel normalisation mean (pixels in [0, 1]).
        std: per-channel normalisation standard deviation.
        even: crop a trailing row/column so both sides are even (NPR's 2x2 cells).
        dim: length of the network's output (1: a logit; CoDE: its CLS feature width).
        device: "cpu" or "cuda".
        batch_size: images per forward pass (same-sized images only).
    """

    name = "zoo-net"
    batched = True

    def __init__(
        self,
        arch: str,
        weights: str,
        arch_params: dict[str, Any] | None = None,
        resize: int | None = None,
        resize_mode: str = "square",
        crop: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        even: bool = False,
        dim: int = 1,
        device: str = "cpu",
        batch_size: int = 16,
    ) -> None:
        self.arch = arch
        self.weights = weights
        self.arch_params = arch_params
        self.resize = resize
        self.resize_mode = resize_mode
        self.crop = crop
        self.mean = mean
        self.std = std
        self.even = even
        self.dim = dim
        self.device = device
        self.batch_size = batch_size
        self._net: Any = None

    def _load(self) -> Any:
        if self._net is None:
            from pathlib import Path

            if self.resize_mode not in RESIZE_MODES:
                raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
            if not self.weights or not Path(self.weights).is_file():
                raise WeightsNotFoundError(
                    f"{self.arch} weights not found: {self.weights!r}. Fetch the detector's weights with "
                    "`gendetect models pull NAME` (see `gendetect models list`), or export the model again."
                )
            from gendetect.zoo.nets import build_net

            self._net = build_net(self.arch, self.weights, self.arch_params).to(self.device)
        return self._net

    def to_tensor(self, image: Image.Image) -> Any:
        """The network input for one RGB image: ``(3, H, W)`` float32, per the authors' test transform."""
        import torch

        if self.resize:
            if self.resize_mode == "square":
                image = image.resize((self.resize, self.resize), Image.BILINEAR)
            else:
                w, h = image.size
                short = min(w, h)
                if short != self.resize:  # torchvision's Resize(int): the long side is int(size * long / short)
                    long = int(self.resize * max(w, h) / short)
                    image = image.resize((self.resize, long) if w <= h else (long, self.resize), Image.BILINEAR)
        arr = torchvision_center_crop(np.asarray(image), self.crop) if self.crop else np.asarray(image)
        if self.even:
            arr = arr[: arr.shape[0] // 2 * 2, : arr.shape[1] // 2 * 2]
        x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32) / 255.0).permute(2, 0, 1)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        return (x - mean) / std

    def forward(self, pixels: Any) -> np.ndarray:
        """Outputs ``(N, dim)`` float32 (logits when dim is 1) of a preprocessed batch ``(N, 3, H, W)``."""
        import torch

        net = self._load()
        with torch.no_grad():
            out = net(pixels.to(self.device)).float()
        return out.reshape(len(pixels), self.dim).cpu().numpy().astype(np.float32)

    def extract_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        self._load()
        out = np.zeros((len(images), self.dim), np.float32)
        tensors = [self.to_tensor(im) for im in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, t in enumerate(tensors):
            by_shape.setdefault(tuple(t.shape), []).append(i)
        for idx in by_shape.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                out[chunk] = self.forward(torch.stack([tensors[i] for i in chunk]))
        return out

    def extract_one(self, image: Image.Image) -> np.ndarray:
        return self.extract_batch([image])[0]

    def __getstate__(self) -> dict[str, Any]:  # worker processes rebuild the network from the config
        return {k: v for k, v in self.__dict__.items() if k != "_net"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._net = None
