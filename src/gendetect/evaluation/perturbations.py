"""Delivery chains: what happens to an image between its maker and the detector (re-encoding, resizing, blur).

Each perturbation is registered in ``PERTURBATIONS`` and written as ``name:argument``; a chain joins them with
``+`` and applies them left to right, as a social network would: ``resize:0.5+jpeg:75``.

    >>> from gendetect.evaluation.perturbations import parse_chain
    >>> parse_chain("resize:0.5+jpeg:75").spec
    'resize:0.5+jpeg:75'

A step may also be one of the benign processing chains that train and calibrate the default model (registry
:data:`~gendetect.augment.benign.BENIGN`: ``camera-mhc``, ``social-1080``, ``upscale-x2-bicubic``, ...), by its
bare name or as ``benign:name`` (needed for the names both registries have: ``benign:jpeg`` is JPEG at a random
quality 60-95, ``jpeg`` without an argument is q75). Its random draws are seeded from each image's pixels, so a
rerun gives the same images. ``benign:*`` (any shell pattern) stands for every matching chain, one row each,
also as one step of a longer chain (``benign:camera-*+jpeg:75``: each camera chain, then q75):

    >>> parse_chain("camera-mhc+jpeg:75").spec
    'camera-mhc+jpeg:75'
    >>> expand_chains(["none", "benign:upscale-x2-*"])
    ['none', 'upscale-x2-bicubic', 'upscale-x2-lanczos']
"""

from __future__ import annotations

import difflib
import hashlib
import io
import math
from collections.abc import Callable, Iterable

from PIL import Image, ImageFilter

from gendetect.config import Configurable
from gendetect.errors import GendetectError, UnknownNameError
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


@PERTURBATIONS.register("benign")
class Benign(Perturbation):
    """A benign processing chain by name (``camera-mhc``, ``social-1080``: registry ``BENIGN``), its random draws
    seeded from the image's pixels (the same image always gets the same copy)."""

    name = "benign"

    def __init__(self, arg: str = "none") -> None:
        from gendetect.augment.benign import BENIGN

        self.arg = arg
        self._chain = BENIGN.create(str(arg))  # an unknown name lists the chains

    @property
    def spec(self) -> str:
        return benign_spec(str(self.arg))

    def seed_for(self, image: Image.Image) -> int:
        """The seed of this image's draws: a hash of its RGB pixels and the chain's name."""
        rgb = image.convert("RGB")
        digest = hashlib.blake2b(rgb.tobytes(), digest_size=8, key=str(self.arg).encode()[:64]).digest()
        return int.from_bytes(digest, "little")

    def __call__(self, image: Image.Image) -> Image.Image:
        return self._chain(image, self.seed_for(image))


def benign_spec(name: str) -> str:
    """How a benign chain is written in a chain spec: bare, or ``benign:name`` where a perturbation has the name."""
    return f"benign:{name}" if name in PERTURBATIONS else name


def _benign_names(pattern: str = "*") -> list[str]:
    from gendetect.augment.benign import list_benign

    return list_benign(pattern)


class Chain:
    """Perturbations applied left to right."""

    def __init__(self, steps: list[Perturbation]) -> None:
        self.steps = steps

    @property
    def spec(self) -> str:
        """The canonical spelling: steps that leave the image as it is (``none``, ``benign:none``) are left out,
        so ``none+camera-mhc`` and ``camera-mhc`` are one chain, and ``benign:none`` is ``none``."""
        return "+".join(s.spec for s in self.steps if s.spec not in ("none", "benign:none")) or "none"

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


def parse_chain(spec: str, *, shown: str | None = None) -> Chain:
    """``"resize:0.5+jpeg:75"`` -> :class:`Chain`. Unknown names list the valid ones; an argument out of its
    range (``jpeg:500``, ``resize:0``) is an error that gives the range. ``shown`` is the chain as the user wrote
    it, for the messages (``benign:camera-*+foo`` rather than one of its expansions)."""
    steps: list[Perturbation] = []
    shown = spec if shown is None else shown
    for part in spec.split("+"):
        name, _, arg = part.strip().partition(":")
        name, arg = name.strip(), arg.strip()
        if name == "benign" and not arg:
            raise GendetectError(f"chain {shown!r}: benign needs a chain name, e.g. benign:camera-mhc")
        if name == "benign" or (name not in PERTURBATIONS and not arg and name in _benign_names()):
            steps.append(Benign(arg if name == "benign" else name))
            continue
        if name not in PERTURBATIONS:
            valid = [n for n in PERTURBATIONS.list() if n != "benign"]
            benign = [benign_spec(n) for n in _benign_names() if n != "none"]
            close = difflib.get_close_matches(name, valid + benign, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"Unknown perturbation {name!r} in chain {shown!r}.{hint} Valid perturbations: {', '.join(valid)}; "
                f"or a benign chain: {', '.join(benign)}."
            )
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


MAX_EXPANDED = 200  # chains one spec may expand to: each is a full pass of feature extraction


def expand_chains(specs: Iterable[str]) -> list[str]:
    """``benign:PATTERN`` (a shell pattern such as ``*`` or ``camera-*``) becomes one chain per matching benign
    chain but ``none``, in name order, also as one step of a longer chain (``benign:camera-*+jpeg:75`` gives
    ``camera-bilinear+jpeg:75``, ``camera-mhc+jpeg:75``, ...; two patterns give every pair, at most
    :data:`MAX_EXPANDED` chains per spec); every other spec is kept. Each is written in its canonical spelling
    (``parse_chain(s).spec``), and chains that are the same (``camera-mhc`` and ``benign:camera-mhc``, ``jpeg`` and
    ``jpeg:75``) appear once."""
    out: list[str] = []
    for spec in specs:
        combos: list[list[str]] = [[]]
        for step in spec.split("+"):
            choices = _expand_step(step, spec)
            combos = [[*c, s] for c in combos for s in choices]
            if len(combos) > MAX_EXPANDED:
                raise GendetectError(
                    f"chain {spec!r} expands to more than {MAX_EXPANDED} chains (each is a pass over the data); "
                    "narrow its patterns"
                )
        expanded = [parse_chain("+".join(c), shown=spec).spec for c in combos]
        out.extend(e for e in expanded if e not in out)
    return out


def _expand_step(step: str, spec: str) -> list[str]:
    head, sep, pattern = (p.strip() for p in step.partition(":"))
    if head != "benign" or not sep or not any(c in pattern for c in "*?["):
        return [step]
    names = _benign_names(pattern)
    if names == ["none"]:
        raise GendetectError(
            f"chain {spec!r}: {step.strip()!r} matches only 'none', the clean row, which robustness always includes"
        )
    names = [n for n in names if n != "none"]
    if not names:
        valid = ", ".join(n for n in _benign_names() if n != "none")
        raise GendetectError(f"chain {spec!r}: no benign chain matches {step.strip()!r}; they are {valid}")
    return [f"benign:{n}" for n in names]


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
