"""Benign processing chains: what happens to a real photo in its owner's hands before a detector sees it.

A detector that calls an upscaled, re-encoded or edited photo "fake" is useless to its users, so these chains
make processed copies of the training reals (as training data and as the set that calibrates the threshold). Each
chain is a named spec of primitive operations (``OPS``), written like the evaluation's perturbation chains,
``name:arg,arg+name:arg``. An argument is a number, a word (a resampling filter, a demosaic method), a range
``lo~hi`` (drawn uniformly per image; an integer range draws integers) or a choice ``a|b|c``. A chain is
deterministic given its seed: every random draw comes from one ``numpy.random.Generator`` seeded per call.

    >>> from gendetect.augment.benign import BENIGN, benign_chain
    >>> chain = BENIGN.create("jpeg")
    >>> chain.spec
    'jpeg:60~95'
    >>> from PIL import Image
    >>> image, applied = benign_chain("resize:0.5,bicubic+jpeg:70~90").apply(Image.new("RGB", (64, 48)), seed=1)
    >>> image.size, applied.startswith("resize:0.5,bicubic+jpeg:")
    ((32, 24), True)

The camera simulation (``demosaic``) mosaics the image with an RGGB Bayer pattern in linear light, adds shot and
read noise, and demosaics it again (bilinear or Malvar-He-Cutler), which leaves the period-2 trace of every camera
photo: features that look for 2x up-sampling see it too, so it must be learnt as *real*.
"""

from __future__ import annotations

import io
import re
import string
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from gendetect.errors import GendetectError
from gendetect.registry import Registry

__all__ = [
    "BENIGN",
    "OPS",
    "BenignChain",
    "Op",
    "bayer_mosaic",
    "benign_chain",
    "bilinear_demosaic",
    "list_benign",
    "malvar_demosaic",
    "random_benign",
]

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "area": Image.Resampling.BOX,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
_SUBSAMPLING = {"444": 0, "422": 1, "420": 2}
MIN_SIDE = 16  # no operation makes an image smaller than this


class BenignError(GendetectError):
    """A benign chain or operation was given a spec or an argument it cannot use."""


# -- arguments -------------------------------------------------------------------------------------------------
class _Range:
    def __init__(self, lo: float, hi: float, integer: bool) -> None:
        self.lo, self.hi, self.integer = lo, hi, integer

    def draw(self, rng: np.random.Generator) -> float | int:
        if self.integer:
            return int(rng.integers(int(self.lo), int(self.hi) + 1))
        return round(float(rng.uniform(self.lo, self.hi)), 4)

    def __str__(self) -> str:
        return f"{self.lo:g}~{self.hi:g}"


class _Choice:
    def __init__(self, options: list[Any]) -> None:
        self.options = options

    def draw(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def __str__(self) -> str:
        return "|".join(str(o) for o in self.options)


def _scalar(text: str) -> Any:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _parse_arg(text: str) -> Any:
    text = text.strip()
    if "|" in text:
        return _Choice([_scalar(t) for t in text.split("|")])
    if "~" in text:
        lo, _, hi = text.partition("~")
        a, b = _scalar(lo), _scalar(hi)
        if isinstance(a, str) or isinstance(b, str) or a > b:
            raise BenignError(f"range {text!r} must be 'lo~hi' with numbers lo <= hi")
        return _Range(a, b, isinstance(a, int) and isinstance(b, int))
    return _scalar(text)


def _draw(arg: Any, rng: np.random.Generator) -> Any:
    return arg.draw(rng) if isinstance(arg, _Range | _Choice) else arg


# -- primitive operations --------------------------------------------------------------------------------------
class Op:
    """One primitive: ``draw`` fixes its random arguments, ``apply`` transforms an RGB image.

    Subclasses set ``name`` and ``defaults`` (the positional arguments, in order, with their default values).
    """

    name: str = ""
    defaults: tuple[Any, ...] = ()

    def __init__(self, *args: Any) -> None:
        if len(args) > len(self.defaults):
            raise BenignError(f"operation {self.name!r} takes at most {len(self.defaults)} arguments, got {args}")
        self.args = tuple(args) + self.defaults[len(args) :]
        self.n_given = len(args)

    def draw(self, rng: np.random.Generator) -> tuple[Any, ...]:
        """The concrete arguments of one application (ranges and choices drawn from ``rng``)."""
        return tuple(_draw(a, rng) for a in self.args)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        raise NotImplementedError

    def spec(self, args: tuple[Any, ...] | None = None) -> str:
        shown = self.args[: self.n_given] if args is None else args
        return f"{self.name}:{','.join(str(a) for a in shown)}" if shown else self.name


OPS: Registry[type[Op]] = Registry("benign operation")


def _filter(name: Any) -> Image.Resampling:
    if name not in FILTERS:
        raise BenignError(f"unknown resampling filter {name!r}; valid: {', '.join(FILTERS)}")
    return FILTERS[name]


def _sized(w: int, h: int, factor: float) -> tuple[int, int]:
    return max(MIN_SIDE, round(w * factor)), max(MIN_SIDE, round(h * factor))


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def encode(image: Image.Image, fmt: str, **kwargs: Any) -> Image.Image:
    """Save ``image`` as ``fmt`` in memory and decode it again (the file a user would have)."""
    buf = io.BytesIO()
    _rgb(image).save(buf, fmt, **kwargs)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out


@OPS.register("resize")
class ResizeOp(Op):
    """``resize:factor,filter``: scale both sides by ``factor`` (antialiased when shrinking)."""

    name = "resize"
    defaults = (0.5, "bicubic")

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        factor, filt = args
        return image.resize(_sized(*image.size, float(factor)), _filter(filt))


@OPS.register("resize_long")
class ResizeLongOp(Op):
    """``resize_long:pixels,filter``: scale so that the long side is ``pixels`` (up or down)."""

    name = "resize_long"
    defaults = (1080, "bicubic")

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        pixels, filt = args
        return image.resize(_sized(*image.size, float(pixels) / max(image.size)), _filter(filt))


@OPS.register("crop")
class CropOp(Op):
    """``crop:fraction``: a random crop whose sides are ``fraction`` of the image's, at a random position."""

    name = "crop"
    defaults = (_Range(0.5, 0.9, False),)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        (fraction,) = args
        w, h = image.size
        cw, ch = min(w, max(MIN_SIDE, round(w * float(fraction)))), min(h, max(MIN_SIDE, round(h * float(fraction))))
        left, top = int(rng.integers(w - cw + 1)), int(rng.integers(h - ch + 1))
        return image.crop((left, top, left + cw, top + ch))


@OPS.register("jpeg")
class JpegOp(Op):
    """``jpeg:quality,subsampling``: JPEG round trip (subsampling ``420``, ``422`` or ``444``)."""

    name = "jpeg"
    defaults = (75, "420")

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        quality, sub = args
        if str(sub) not in _SUBSAMPLING:
            raise BenignError(f"jpeg subsampling must be one of {', '.join(_SUBSAMPLING)}, got {sub!r}")
        return encode(image, "JPEG", quality=int(quality), subsampling=_SUBSAMPLING[str(sub)])


@OPS.register("webp")
class WebpOp(Op):
    """``webp:quality``: lossy WebP round trip."""

    name = "webp"
    defaults = (80,)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        return encode(image, "WEBP", quality=int(args[0]))


@OPS.register("png")
class PngOp(Op):
    """``png``: lossless PNG round trip (the pixels do not change; the file is a PNG)."""

    name = "png"

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        return encode(image, "PNG")


@OPS.register("median")
class MedianOp(Op):
    """``median:size``: median filter (odd ``size``), the simplest denoiser."""

    name = "median"
    defaults = (3,)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        return image.filter(ImageFilter.MedianFilter(int(args[0])))


@OPS.register("blur")
class BlurOp(Op):
    """``blur:sigma``: Gaussian blur (a soft-focus or noise-reduction filter)."""

    name = "blur"
    defaults = (1.0,)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        return image.filter(ImageFilter.GaussianBlur(float(args[0])))


def _shifts(x: np.ndarray, radius: int) -> Any:
    pad = np.pad(x, [(radius, radius), (radius, radius)] + [(0, 0)] * (x.ndim - 2), mode="reflect")
    h, w = x.shape[:2]
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            yield dy, dx, pad[radius + dy : radius + dy + h, radius + dx : radius + dx + w]


@OPS.register("bilateral")
class BilateralOp(Op):
    """``bilateral:sigma_space,sigma_range``: edge-preserving smoothing (5 x 5 window, range on RGB distance)."""

    name = "bilateral"
    defaults = (1.5, 25.0)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        s_space, s_range = float(args[0]), float(args[1])
        x = np.asarray(image, np.float32)
        acc = np.zeros_like(x)
        norm = np.zeros(x.shape[:2], np.float32)
        for dy, dx, shifted in _shifts(x, 2):
            d2 = ((shifted - x) ** 2).sum(axis=2)
            wgt = np.exp(-(dy * dy + dx * dx) / (2 * s_space**2) - d2 / (2 * 3 * s_range**2)).astype(np.float32)
            acc += wgt[..., None] * shifted
            norm += wgt
        return Image.fromarray(np.clip(acc / norm[..., None] + 0.5, 0, 255).astype(np.uint8))


@OPS.register("unsharp")
class UnsharpOp(Op):
    """``unsharp:radius,percent,threshold``: unsharp-mask sharpening, as photo apps and cameras do."""

    name = "unsharp"
    defaults = (1.5, 80, 2)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        radius, percent, threshold = args
        return image.filter(ImageFilter.UnsharpMask(float(radius), int(percent), int(threshold)))


def _tone(image: Image.Image, fn: Any) -> Image.Image:
    x = np.asarray(image, np.float32) / 255.0
    return Image.fromarray(np.clip(fn(x) * 255.0 + 0.5, 0, 255).astype(np.uint8))


@OPS.register("gamma")
class GammaOp(Op):
    """``gamma:g``: tone curve ``x ** (1 / g)`` (``g > 1`` brightens the mid-tones)."""

    name = "gamma"
    defaults = (1.0,)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        return _tone(image, lambda x: x ** (1.0 / float(args[0])))


@OPS.register("contrast")
class ContrastOp(Op):
    """``contrast:c``: scale the deviation from mid-grey by ``c``."""

    name = "contrast"
    defaults = (1.0,)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        return _tone(image, lambda x: (x - 0.5) * float(args[0]) + 0.5)


@OPS.register("saturation")
class SaturationOp(Op):
    """``saturation:s``: scale each pixel's deviation from its own luma by ``s``."""

    name = "saturation"
    defaults = (1.0,)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        def fn(x: np.ndarray) -> np.ndarray:
            luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
            return luma[..., None] + (x - luma[..., None]) * float(args[0])

        return _tone(image, fn)


@OPS.register("wb")
class WhiteBalanceOp(Op):
    """``wb:red,blue``: white balance: multiply the red and blue channels by these gains (in linear light)."""

    name = "wb"
    defaults = (1.0, 1.0)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        gains = np.array([float(args[0]), 1.0, float(args[1])], np.float32)
        return _tone(image, lambda x: _to_srgb(_to_linear(x) * gains))


@OPS.register("noise")
class NoiseOp(Op):
    """``noise:sigma``: additive Gaussian noise of ``sigma`` grey levels, per pixel and channel."""

    name = "noise"
    defaults = (2.0,)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        x = np.asarray(image, np.float32)
        x = x + rng.normal(0.0, float(args[0]), size=x.shape).astype(np.float32)
        return Image.fromarray(np.clip(x + 0.5, 0, 255).astype(np.uint8))


# -- camera simulation -----------------------------------------------------------------------------------------
def _to_linear(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 1) ** 2.2


def _to_srgb(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 1) ** (1 / 2.2)


def _bayer_masks(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGGB masks: red at (even, even), green at (even, odd) and (odd, even), blue at (odd, odd)."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = (yy % 2 == 0) & (xx % 2 == 0)
    b = (yy % 2 == 1) & (xx % 2 == 1)
    return r, ~(r | b), b


def bayer_mosaic(rgb: np.ndarray) -> np.ndarray:
    """``(H, W)`` RGGB Bayer mosaic of an ``(H, W, 3)`` float array: each pixel keeps one channel."""
    r, g, _ = _bayer_masks(*rgb.shape[:2])
    return np.where(r, rgb[..., 0], np.where(g, rgb[..., 1], rgb[..., 2])).astype(np.float32)


def _correlate(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """2-D correlation of ``x`` with an odd square ``kernel``, reflect-padded (numpy only)."""
    k = kernel.shape[0] // 2
    out = np.zeros_like(x, dtype=np.float32)
    for dy, dx, shifted in _shifts(x, k):
        c = kernel[dy + k, dx + k]
        if c:
            out += np.float32(c) * shifted
    return out


def bilinear_demosaic(raw: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` bilinear demosaic of an RGGB mosaic: each missing value is the mean of its neighbours."""
    r, g, b = _bayer_masks(*raw.shape)
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
    return np.stack([_correlate(raw * r, k_rb), _correlate(raw * g, k_g), _correlate(raw * b, k_rb)], axis=-1)


# Malvar, He & Cutler, "High-quality linear interpolation for demosaicing of Bayer-patterned color images"
# (ICASSP 2004): bilinear interpolation corrected by the Laplacian of the channel that is present. All / 8.
_MHC_G = (
    np.array([[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]], np.float32) / 8
)
_MHC_ROW = (
    np.array(  # the missing colour's neighbours are left and right
        [[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]], np.float32
    )
    / 8
)
_MHC_COL = _MHC_ROW.T.copy()  # ... above and below
_MHC_DIAG = (
    np.array(  # red at blue sites and blue at red sites
        [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]], np.float32
    )
    / 8
)


def malvar_demosaic(raw: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` Malvar-He-Cutler demosaic of an RGGB mosaic (5 x 5 linear filters, numpy only)."""
    h, w = raw.shape
    r, g, b = _bayer_masks(h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    g_in_r_row = (yy % 2 == 0) & (xx % 2 == 1)
    g_in_b_row = (yy % 2 == 1) & (xx % 2 == 0)
    f_g, f_row, f_col, f_diag = (_correlate(raw, k) for k in (_MHC_G, _MHC_ROW, _MHC_COL, _MHC_DIAG))
    red = np.select([r, g_in_r_row, g_in_b_row, b], [raw, f_row, f_col, f_diag])
    green = np.where(g, raw, f_g)
    blue = np.select([b, g_in_b_row, g_in_r_row, r], [raw, f_row, f_col, f_diag])
    return np.stack([red, green, blue], axis=-1).astype(np.float32)


DEMOSAIC = {"bilinear": bilinear_demosaic, "mhc": malvar_demosaic}


@OPS.register("demosaic")
class DemosaicOp(Op):
    """``demosaic:method,shot,read``: camera simulation in linear light.

    RGGB mosaic, then Poisson-Gaussian sensor noise (variance ``shot * x + read ** 2`` for a linear intensity
    ``x`` in [0, 1]), then demosaic with ``method`` (``bilinear`` or ``mhc``, Malvar-He-Cutler), back to sRGB.
    """

    name = "demosaic"
    defaults = ("mhc", 0.0, 0.0)

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        method, shot, read = args
        if method not in DEMOSAIC:
            raise BenignError(f"unknown demosaic method {method!r}; valid: {', '.join(DEMOSAIC)}")
        lin = _to_linear(np.asarray(image, np.float32) / 255.0)
        raw = bayer_mosaic(lin)
        if shot or read:
            sigma = np.sqrt(float(shot) * np.clip(raw, 0, 1) + float(read) ** 2)
            raw = raw + sigma * rng.standard_normal(raw.shape).astype(np.float32)
        rgb = DEMOSAIC[method](np.clip(raw, 0, 1))
        return Image.fromarray(np.clip(_to_srgb(rgb) * 255.0 + 0.5, 0, 255).astype(np.uint8))


@OPS.register("none")
class IdentityOp(Op):
    """``none``: the image unchanged."""

    name = "none"

    def apply(self, image: Image.Image, args: tuple[Any, ...], rng: np.random.Generator) -> Image.Image:
        return image


# -- chains ----------------------------------------------------------------------------------------------------
def _parse_step(part: str) -> Op:
    name, _, argtext = part.strip().partition(":")
    cls = OPS.get(name)
    args = [_parse_arg(a) for a in argtext.split(",")] if argtext else []
    return cls(*args)


class BenignChain:
    """Operations applied left to right; ``chain(image, seed)`` is deterministic given ``seed``.

    Args:
        spec: ``"op:arg,arg+op:arg"``; ``{placeholders}`` are filled from ``params``.
        name: the registry name, when the chain came from :data:`BENIGN`.
        params: values of the spec's placeholders (e.g. ``scale`` of the phone chains).
    """

    def __init__(self, spec: str, *, name: str | None = None, **params: Any) -> None:
        self.template = spec
        self.name = name or spec
        self.params = params
        fields = {f for _, f, _, _ in string.Formatter().parse(spec) if f}
        missing = fields - set(params)
        if missing:
            raise BenignError(f"benign chain {self.name!r} needs values for {', '.join(sorted(missing))}")
        self.spec = spec.format(**params) if fields else spec
        self.steps = [_parse_step(p) for p in self.spec.split("+") if p.strip()]
        if not self.steps:
            raise BenignError(f"benign chain {self.name!r} has no operations")

    def apply(self, image: Image.Image, seed: int | np.random.Generator = 0) -> tuple[Image.Image, str]:
        """The processed RGB image and the concrete spec applied (every range and choice resolved)."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        image = _rgb(image)
        applied = []
        for step in self.steps:
            args = step.draw(rng)
            image = _rgb(step.apply(image, args, rng))
            applied.append(step.spec(args))
        return image, "+".join(applied)

    def __call__(self, image: Image.Image, seed: int | np.random.Generator = 0) -> Image.Image:
        return self.apply(image, seed)[0]

    def __repr__(self) -> str:
        return f"BenignChain({self.name!r}: {self.spec!r})"


BENIGN: Registry[BenignChain] = Registry("benign chain")

# name -> (spec, default placeholder values, what it stands for)
CHAINS: dict[str, tuple[str, dict[str, Any], str]] = {
    "none": ("none", {}, "the photo as it is"),
    "upscale-x1.5-bicubic": ("resize:1.5,bicubic", {}, "1.5x upscale, bicubic"),
    "upscale-x1.5-lanczos": ("resize:1.5,lanczos", {}, "1.5x upscale, Lanczos"),
    "upscale-x2-bicubic": ("resize:2,bicubic", {}, "2x upscale, bicubic (the worst case of the old default)"),
    "upscale-x2-lanczos": ("resize:2,lanczos", {}, "2x upscale, Lanczos"),
    "downscale-x0.5": ("resize:0.5,bicubic|lanczos|area", {}, "antialiased half-size copy"),
    "downscale-x0.75": ("resize:0.75,bicubic|lanczos|area", {}, "antialiased 3/4-size copy"),
    "crop": ("crop:0.5~0.9", {}, "random crop, 50-90% of each side"),
    "jpeg": ("jpeg:60~95", {}, "JPEG, quality 60-95, 4:2:0"),
    "jpeg-444": ("jpeg:85~98,444", {}, "high-quality JPEG without chroma subsampling"),
    "double-jpeg": ("jpeg:70~95+jpeg:60~90", {}, "JPEG re-saved at another quality"),
    "double-jpeg-resized": ("jpeg:75~95+resize:0.6~0.95,bicubic+jpeg:60~90", {}, "JPEG, resized, JPEG again"),
    "webp": ("webp:60~95", {}, "lossy WebP, quality 60-95"),
    "denoise-median": ("median:3", {}, "3x3 median filter"),
    "denoise-bilateral": ("bilateral:1~2,15~40", {}, "edge-preserving bilateral smoothing"),
    "denoise-blur": ("blur:0.5~1.2", {}, "mild Gaussian blur"),
    "sharpen": ("unsharp:1~2.5,50~150,0~3", {}, "unsharp mask"),
    "tone": ("gamma:0.75~1.35+contrast:0.8~1.25", {}, "gamma and contrast edit"),
    "colour": ("saturation:0.7~1.4+wb:0.85~1.15,0.85~1.15", {}, "saturation and white-balance edit"),
    "photo-edit": (
        "gamma:0.8~1.25+contrast:0.85~1.2+saturation:0.8~1.3+unsharp:1~2,40~100,0~2+jpeg:85~95",
        {},
        "an edit in a photo app, exported as JPEG",
    ),
    "screenshot": ("resize:0.6~2,bilinear|bicubic+png", {}, "shown on screen at another zoom, saved as PNG"),
    "social-1080": ("resize_long:1080,bicubic|lanczos+jpeg:75", {}, "long side to 1080 px, JPEG q75"),
    "phone-upscale": (
        "resize:{scale},bicubic|lanczos+unsharp:1~2,30~80,1+jpeg:85~95,420",
        {"scale": 2.0},
        "phone-sized upscale (factor ``scale``) with camera-like JPEG",
    ),
    "camera-bilinear": (
        "demosaic:bilinear,0.0005~0.004,0.0005~0.003+unsharp:1~2,50~120,1+jpeg:85~95,420",
        {},
        "camera: RGGB mosaic, noise, bilinear demosaic, sharpening, JPEG",
    ),
    "camera-mhc": (
        "demosaic:mhc,0.0005~0.004,0.0005~0.003+unsharp:1~2,50~120,1+jpeg:85~95,420",
        {},
        "camera: RGGB mosaic, noise, Malvar-He-Cutler demosaic, sharpening, JPEG",
    ),
    "camera-raw": (
        "demosaic:bilinear|mhc,0.0005~0.004,0.0005~0.003+png",
        {},
        "camera: mosaic, noise, demosaic, saved losslessly (a RAW developed to PNG/TIFF)",
    ),
}


def _factory(name: str, spec: str, defaults: dict[str, Any], doc: str) -> type[BenignChain]:
    def __init__(self: BenignChain, **params: Any) -> None:
        BenignChain.__init__(self, spec, name=name, **{**defaults, **params})

    return type(
        "Benign_" + re.sub(r"\W", "_", name),
        (BenignChain,),
        {"__init__": __init__, "__doc__": f"{doc}: ``{spec}``.", "chain_name": name},
    )


for _name, (_spec, _defaults, _doc) in CHAINS.items():
    BENIGN.register(_name)(_factory(_name, _spec, _defaults, _doc))


def list_benign(pattern: str = "*") -> list[str]:
    """Registered benign chain names matching ``pattern``."""
    return BENIGN.list(pattern)


def benign_chain(spec_or_name: str, **params: Any) -> BenignChain:
    """A registered chain by name, or an ad-hoc chain from a spec such as ``"resize:2,lanczos+jpeg:90"``."""
    if spec_or_name in BENIGN:
        return BENIGN.create(spec_or_name, **params)
    if ":" not in spec_or_name and "+" not in spec_or_name and spec_or_name not in OPS:
        BENIGN.get(spec_or_name)  # raises UnknownNameError listing the chains
    return BenignChain(spec_or_name, **params)


def random_benign(image: Image.Image, seed: int, names: Sequence[str] | None = None) -> tuple[Image.Image, str]:
    """Draw one chain (uniformly from ``names``, default every chain but ``none``) and apply it.

    Returns:
        The processed RGB image and the name of the chain that made it.
    """
    rng = np.random.default_rng(seed)
    pool = list(names) if names is not None else [n for n in BENIGN.list() if n != "none"]
    if not pool:
        raise BenignError("random_benign needs at least one chain name")
    name = pool[int(rng.integers(len(pool)))]
    return benign_chain(name)(image, rng), name
