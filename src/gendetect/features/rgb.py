"""``rgb``: the raw pixels of a fixed-size square, as a feature vector (the input of image-level CNN detectors).

There are no weights and nothing is learned here: the vector is the ``(3, size, size)`` channel-first crop, flattened,
with the uint8 values kept as floats in ``[0, 255]``. The ``cnn`` detector reshapes it back to an image. The same
square-crop policy (:func:`square_crop`) is used by the DNF extractor, so RGB and DNF detectors see the same pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from gendetect.features.base import EXTRACTORS, FeatureExtractor
from gendetect.imageio import center_box

PREPROCESS = ("center-crop", "resize")


def square_crop(image: Image.Image, size: int, preprocess: str = "center-crop") -> np.ndarray:
    """The ``size`` x ``size`` square an image-level model sees: ``(size, size, 3)`` uint8.

    Args:
        image: an RGB image of any size.
        size: side of the square in pixels.
        preprocess: ``"center-crop"`` takes the central square at full resolution, never resampling (images smaller
            than ``size`` are padded by reflection), so pixel-level traces survive; ``"resize"`` resizes the shorter
            side to ``size`` (bicubic) and then takes the central square, like most research code does.
    """
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {PREPROCESS}, got {preprocess!r}")
    if image.mode != "RGB":
        image = image.convert("RGB")
    if preprocess == "resize":
        scale = size / min(image.size)
        new = (max(size, round(image.width * scale)), max(size, round(image.height * scale)))
        image = image.resize(new, Image.BICUBIC)
    return center_crop(image, (size, size))


def center_crop(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """The central ``(h, w)`` window of an image at full resolution: ``(h, w, channels)`` uint8.

    Never resamples: an image smaller than the window is padded by reflection. The crop is taken before converting
    to numpy, so a large photo is never copied whole.
    """
    h, w = size
    if image.width < w or image.height < h:
        arr = np.asarray(image)
        py, px = max(h - arr.shape[0], 0), max(w - arr.shape[1], 0)
        arr = np.pad(arr, ((py // 2, py - py // 2), (px // 2, px - px // 2), (0, 0)), mode="symmetric")
        image = Image.fromarray(arr)
    return np.asarray(image.crop(center_box(image.width, image.height, size)))


@EXTRACTORS.register("rgb")
class RGBPixels(FeatureExtractor):
    """The central ``size`` x ``size`` square's pixels: ``(3 * size * size,)`` float32 in ``[0, 255]``, channel-first.

    Args:
        size: side of the square (the ``cnn`` detector's input size).
        preprocess: ``"center-crop"`` (no resampling) or ``"resize"`` (shorter side to ``size``, then crop).
    """

    name = "rgb"

    def __init__(self, size: int = 224, preprocess: str = "center-crop") -> None:
        self.size = size
        self.preprocess = preprocess
        self.dim = 3 * size * size
        self.map_shape = (3, size, size)

    def extract_one(self, image: Image.Image) -> np.ndarray:
        return square_crop(image, self.size, self.preprocess).transpose(2, 0, 1).astype(np.float32).ravel()
