"""Delivery chains: what happens to an image between its maker and the detector (re-encoding, resizing, blur).

Each perturbation is registered in ``PERTURBATIONS`` and written as ``name:argument``; a chain joins them with
``+`` and applies them left to right, as a social network would: ``resize:0.5+jpeg:75``.

    >>> from gendetect.evaluation.perturbations import parse_chain
    >>> parse_chain("resize:0.5+jpeg:75").spec
    'resize:0.5+jpeg:75'
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

from PIL import Image, ImageFilter

from gendetect.config import Configurable
from gendetect.errors import GendetectError
from gendetect.registry import Registry


class Perturbation(Configurable):
    """An image -> image transformation; ``arg`` is its one main parameter."""

    def __call__(self, image: Image.Image) -> Image.Image:
        raise NotImplementedError

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.arg}" if getattr(self, "arg", None) is not None else self.name


PERTURBATIONS: Registry[Perturbation] = Registry("perturbation")


def _reencode(image: Image.Image, fmt: str, **kwargs) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


@PERTURBATIONS.register("jpeg")
class Jpeg(Perturbation):
    """Re-encode as JPEG at quality ``arg`` (4:2:0 chroma subsampling, as most encoders do)."""

    name = "jpeg"

    def __init__(self, arg: int = 75) -> None:
        self.arg = arg

    def __call__(self, image: Image.Image) -> Image.Image:
        return _reencode(image, "JPEG", quality=int(self.arg))


@PERTURBATIONS.register("webp")
class Webp(Perturbation):
    """Re-encode as lossy WebP at quality ``arg``."""

    name = "webp"

    def __init__(self, arg: int = 80) -> None:
        self.arg = arg

    def __call__(self, image: Image.Image) -> Image.Image:
        return _reencode(image, "WEBP", quality=int(self.arg))


@PERTURBATIONS.register("resize")
class Resize(Perturbation):
    """Scale both sides by ``arg`` with an antialiased bilinear filter (at least 8 px)."""

    name = "resize"

    def __init__(self, arg: float = 0.5) -> None:
        self.arg = arg

    def __call__(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        size = (max(8, round(w * float(self.arg))), max(8, round(h * float(self.arg))))
        return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=None)


@PERTURBATIONS.register("blur")
class Blur(Perturbation):
    """Gaussian blur with standard deviation ``arg`` pixels."""

    name = "blur"

    def __init__(self, arg: float = 1.0) -> None:
        self.arg = arg

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.filter(ImageFilter.GaussianBlur(float(self.arg)))


@PERTURBATIONS.register("crop")
class CenterCrop(Perturbation):
    """Centre crop to ``arg`` x ``arg`` pixels (or the whole side when smaller)."""

    name = "crop"

    def __init__(self, arg: int = 256) -> None:
        self.arg = arg

    def __call__(self, image: Image.Image) -> Image.Image:
        w, h = image.size
        s = int(self.arg)
        left, top = max((w - s) // 2, 0), max((h - s) // 2, 0)
        return image.crop((left, top, min(left + s, w), min(top + s, h)))


@PERTURBATIONS.register("none")
class Identity(Perturbation):
    """The image as delivered."""

    name = "none"

    def __init__(self) -> None:
        self.arg = None

    def __call__(self, image: Image.Image) -> Image.Image:
        return image


class Chain:
    """Perturbations applied left to right."""

    def __init__(self, steps: list[Perturbation]) -> None:
        self.steps = steps

    @property
    def spec(self) -> str:
        return "+".join(s.spec for s in self.steps) or "none"

    def __call__(self, image: Image.Image) -> Image.Image:
        for step in self.steps:
            image = step(image)
        return image


# Valid arguments of the built-in perturbations: (low, high, whether low itself is allowed).
_ARG_RANGES: dict[str, tuple[float, float, bool]] = {
    "jpeg": (1, 100, True),
    "webp": (1, 100, True),
    "resize": (0, 16, False),
    "blur": (0, 100, True),
    "crop": (8, 65536, True),
}


def parse_chain(spec: str) -> Chain:
    """``"resize:0.5+jpeg:75"`` -> :class:`Chain`. Unknown names list the valid ones; an argument out of its
    range (``jpeg:500``, ``resize:0``) is an error that gives the range."""
    steps = []
    for part in spec.split("+"):
        name, _, arg = part.strip().partition(":")
        cls: Callable[..., Perturbation] = PERTURBATIONS.get(name)
        if not arg:
            steps.append(cls())
            continue
        try:
            value: float | int = int(arg) if arg.lstrip("-").isdigit() else float(arg)
        except ValueError as e:
            raise GendetectError(f"perturbation {part!r}: argument {arg!r} is not a number") from e
        if name in _ARG_RANGES:
            lo, hi, lo_ok = _ARG_RANGES[name]
            if not ((value >= lo if lo_ok else value > lo) and value <= hi and math.isfinite(value)):
                span = f"{lo:g} to {hi:g}" if lo_ok else f"above {lo:g} and at most {hi:g}"
                raise GendetectError(f"perturbation {part!r}: argument {arg!r} is out of range; {name} takes {span}")
        steps.append(cls(value))
    return Chain(steps)


# UnivFD's JPEG and blur, social-network style chains, and format/size changes.
DEFAULT_CHAINS = (
    "none",
    "jpeg:95",
    "jpeg:75",
    "jpeg:50",
    "webp:80",
    "resize:0.5",
    "resize:0.25",
    "blur:1",
    "blur:2",
    "crop:256",
    "resize:0.5+jpeg:75",
    "crop:512+resize:0.5+jpeg:85",
)
