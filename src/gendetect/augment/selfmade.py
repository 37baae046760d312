"""Self-made fakes: the last stage of a generator, simulated on real photos, without any generator's weights.

Generators paint an image at low resolution (a latent, a feature map) and up-sample it with a decoder; the decoder's
up-sampling leaves the trace forensic features look for. Applying such a last stage to a real photo gives an
*aligned* fake: the same content as the real, differing only in the decoder trace, so a detector trained on the
pair cannot learn content, subject or style (Corvi et al. and Cozzolino et al. make fakes this way for training).

* **Interpolation cascades** (``SELFMADE``): shrink the photo by 2, 4 or 8 (area or bicubic), then up-sample it
  back in x2 stages by nearest neighbour, by a transposed-convolution-like step (zero insertion and a random 3 x 3
  kernel, which leaves checkerboard periodicity), or by nearest neighbour followed by a random 3 x 3 smoothing
  convolution. The output has the input's size.
* **A decoder zoo** (:func:`train_decoder_zoo`, torch needed): small auto-encoders shaped like the SD-VAE (strided
  convolutions down, nearest up-sampling plus convolutions up) and super-resolution decoders (from a shrunk copy),
  with random widths, depths, activations and up-sampling layers per seed, briefly trained on real photo patches.
  Their reconstructions look like the photo and carry a learnt decoder's trace. Saved as ``config.json`` plus
  ``model.safetensors`` (the one weights file name; zoos saved as ``weights.safetensors`` still load), never pickle.
* **Matched post-processing** (:func:`matched_pair`): the same random crop, resize and compression for a real and
  its fake, so that neither class carries a size or compression cue. :func:`make_selfmade_set` does all of it for
  a list of photos.

    >>> from PIL import Image
    >>> from gendetect.augment.selfmade import SELFMADE
    >>> fake = SELFMADE.create("cascade-x4-tconv")(Image.new("RGB", (50, 40), "grey"), seed=0)
    >>> fake.size
    (50, 40)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from gendetect.atomic import user_mode
from gendetect.augment.benign import BenignChain, BenignError
from gendetect.config import WEIGHTS_FILE, weights_file
from gendetect.errors import GendetectError, ModelFormatError, require
from gendetect.registry import Registry

logger = logging.getLogger(__name__)

__all__ = [
    "MATCHED_POSTS",
    "SELFMADE",
    "Cascade",
    "DecoderConfig",
    "DecoderZoo",
    "SelfmadeSample",
    "list_selfmade",
    "make_selfmade_set",
    "matched_pair",
    "train_decoder_zoo",
]

ZOO_FORMAT = "gendetect-decoder-zoo"
ZOO_VERSION = 1


# -- interpolation cascades ------------------------------------------------------------------------------------
def _pad_to(x: np.ndarray, multiple: int) -> np.ndarray:
    h, w = x.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return x
    return np.pad(x, [(0, ph), (0, pw)] + [(0, 0)] * (x.ndim - 2), mode="symmetric")


def _conv3(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """3 x 3 correlation of an ``(H, W, C)`` array with a 3 x 3 kernel, reflect-padded."""
    p = np.pad(x, [(1, 1), (1, 1), (0, 0)], mode="reflect")
    h, w = x.shape[:2]
    out = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            out += np.float32(kernel[i, j]) * p[i : i + h, j : j + w]
    return out


class Cascade:
    """Down-sample by ``factor`` then up-sample back in x2 stages; ``cascade(image, seed)`` keeps the size.

    Args:
        factor: 2, 4 or 8.
        up: ``nearest``, ``tconv`` (zero insertion and a random 3 x 3 kernel per stage, checkerboard) or
            ``nearest-conv`` (nearest x2 then a random positive 3 x 3 smoothing kernel per stage).
        down: ``area``, ``bicubic``, or ``None`` to draw one of them per image.
    """

    name = "cascade"

    def __init__(self, factor: int = 2, up: str = "nearest", down: str | None = None) -> None:
        self.factor = factor
        self.up = up
        self.down = down

    def _kernel(self, rng: np.random.Generator) -> np.ndarray:
        base = np.outer([0.5, 1.0, 0.5], [0.5, 1.0, 0.5])
        if self.up == "tconv":  # like a learnt stride-2 transposed conv: the 4 phases get unequal gains
            k = base * rng.uniform(0.6, 1.4, size=(3, 3))
            return (k * 4.0 / k.sum()).astype(np.float32)
        k = base * rng.uniform(0.3, 1.7, size=(3, 3))
        return (k / k.sum()).astype(np.float32)

    def __call__(self, image: Image.Image, seed: int | np.random.Generator = 0) -> Image.Image:
        if self.factor not in (2, 4, 8):
            raise GendetectError(f"cascade factor must be 2, 4 or 8, got {self.factor!r}")
        if self.up not in ("nearest", "tconv", "nearest-conv"):
            raise GendetectError(f"cascade up-sampling must be nearest, tconv or nearest-conv, got {self.up!r}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        down = self.down or ("area", "bicubic")[int(rng.integers(2))]
        filt = {"area": Image.Resampling.BOX, "bicubic": Image.Resampling.BICUBIC}.get(down)
        if filt is None:
            raise GendetectError(f"cascade down-sampling must be area or bicubic, got {down!r}")
        image = image.convert("RGB")
        w, h = image.size
        x = _pad_to(np.asarray(image), self.factor)
        small = Image.fromarray(x).resize((x.shape[1] // self.factor, x.shape[0] // self.factor), filt)
        y = np.asarray(small, np.float32)
        for _ in range(int(math.log2(self.factor))):
            if self.up == "tconv":
                z = np.zeros((y.shape[0] * 2, y.shape[1] * 2, 3), np.float32)
                z[::2, ::2] = y
                y = _conv3(z, self._kernel(rng))
            else:
                y = np.repeat(np.repeat(y, 2, axis=0), 2, axis=1)
                if self.up == "nearest-conv":
                    y = _conv3(y, self._kernel(rng))
        return Image.fromarray(np.clip(y[:h, :w] + 0.5, 0, 255).astype(np.uint8))

    def __repr__(self) -> str:
        return f"Cascade(factor={self.factor}, up={self.up!r}, down={self.down!r})"


SELFMADE: Registry[Any] = Registry("self-made fake method")


def _cascade_factory(factor: int, up: str) -> type[Cascade]:
    def __init__(self: Cascade, down: str | None = None) -> None:
        Cascade.__init__(self, factor, up, down)

    doc = f"Down x{factor} (area or bicubic), then {up} up-sampling in x2 stages back to the input size."
    return type(f"Cascade_x{factor}_{up.replace('-', '_')}", (Cascade,), {"__init__": __init__, "__doc__": doc})


for _factor in (2, 4, 8):
    for _up in ("nearest", "tconv", "nearest-conv"):
        SELFMADE.register(f"cascade-x{_factor}-{_up}")(_cascade_factory(_factor, _up))


def list_selfmade(pattern: str = "*") -> list[str]:
    """Registered self-made fake methods (the cascades; a :class:`DecoderZoo` adds its own via ``names``)."""
    return SELFMADE.list(pattern)


# -- decoder zoo -----------------------------------------------------------------------------------------------
def _require_torch() -> Any:
    return require("torch", "clip", "the decoder zoo (unlike the cascades)")


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    torch = _require_torch()
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """Architecture of one zoo member."""

    kind: str  # "ae": strided-conv encoder + decoder; "sr": decoder from an area-shrunk copy (super-resolution)
    stages: int  # number of x2 stages: total stride 2 ** stages
    width: int  # channels at full resolution; deeper stages use up to 2x this
    latent: int  # channels of the bottleneck (ae) or of the low-resolution features (sr)
    activation: str  # "relu" | "silu" | "gelu" | "leaky_relu"
    up: str  # decoder up-sampling: "nearest-conv" | "tconv" | "pixelshuffle" | "bilinear-conv"
    blocks: int  # 3 x 3 convolutions after each up-sampling layer
    seed: int  # torch seed of the initial weights

    @property
    def stride(self) -> int:
        return 2**self.stages

    @classmethod
    def draw(cls, rng: np.random.Generator, seed: int, width_choices: Sequence[int] = (8, 12, 16)) -> DecoderConfig:
        kind = ("ae", "ae", "sr")[int(rng.integers(3))]
        return cls(
            kind=kind,
            stages=int((1, 2, 3)[int(rng.integers(3))] if kind == "sr" else (1, 2, 2, 3)[int(rng.integers(4))]),
            width=int(width_choices[int(rng.integers(len(width_choices)))]),
            latent=int((8, 12, 16)[int(rng.integers(3))]),
            activation=("relu", "silu", "gelu", "leaky_relu")[int(rng.integers(4))],
            up=("nearest-conv", "nearest-conv", "tconv", "pixelshuffle", "bilinear-conv")[int(rng.integers(5))],
            blocks=int(rng.integers(1, 3)),
            seed=seed,
        )


def _build(cfg: DecoderConfig) -> Any:
    """The torch module of ``cfg``: ``(N, 3, H, W)`` in [-1, 1] -> ``(N, 3, H, W)`` (sr: input ``H / stride``)."""
    torch = _require_torch()
    nn = torch.nn
    acts = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU, "leaky_relu": lambda: nn.LeakyReLU(0.2)}
    if cfg.activation not in acts or cfg.up not in ("nearest-conv", "tconv", "pixelshuffle", "bilinear-conv"):
        raise ModelFormatError(f"unknown activation or up-sampling in decoder config {cfg}")
    act = acts[cfg.activation]
    widths = [min(cfg.width * 2**i, cfg.width * 2) for i in range(cfg.stages + 1)]  # full res ... lowest res
    enc: list[Any] = []
    if cfg.kind == "ae":
        enc += [nn.Conv2d(3, widths[0], 3, padding=1), act()]
        for i in range(cfg.stages):
            enc += [nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1), act()]
        enc += [nn.Conv2d(widths[-1], cfg.latent, 1)]
    elif cfg.kind == "sr":
        enc += [nn.Conv2d(3, cfg.latent, 3, padding=1), act(), nn.Conv2d(cfg.latent, cfg.latent, 3, padding=1)]
    else:
        raise ModelFormatError(f"unknown decoder kind {cfg.kind!r} (ae or sr)")
    dec: list[Any] = [nn.Conv2d(cfg.latent, widths[-1], 3, padding=1), act()]
    for i in reversed(range(cfg.stages)):
        cin, cout = widths[i + 1], widths[i]
        if cfg.up == "nearest-conv":
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1)]
        elif cfg.up == "bilinear-conv":
            dec += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(cin, cout, 3, padding=1),
            ]
        elif cfg.up == "tconv":
            dec += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)]
        else:
            dec += [nn.Conv2d(cin, cout * 4, 3, padding=1), nn.PixelShuffle(2)]
        dec += [act()]
        for _ in range(cfg.blocks - 1):
            dec += [nn.Conv2d(cout, cout, 3, padding=1), act()]
    last = nn.Conv2d(widths[0], 3, 3, padding=1)
    nn.init.zeros_(last.weight)  # start as the bilinear skip alone: training only adds detail
    nn.init.zeros_(last.bias)
    dec += [last]
    return nn.Sequential(nn.Sequential(*enc), nn.Sequential(*dec))


def _to_tensor(x: np.ndarray) -> Any:
    torch = _require_torch()
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32) / 127.5 - 1.0)


def _shrink(batch: np.ndarray, stride: int) -> np.ndarray:
    """Area-average ``(N, H, W, 3)`` by ``stride`` (H, W multiples of it): the sr decoders' input."""
    n, h, w, c = batch.shape
    return batch.reshape(n, h // stride, stride, w // stride, stride, c).mean(axis=(2, 4))


def _forward(model: Any, cfg: DecoderConfig, batch: np.ndarray, device: str = "cpu") -> Any:
    """Model output for ``(N, H, W, 3)`` float pixels in [0, 255] (H, W multiples of the stride).

    Both kinds add their output to the bilinear up-sampling of the area-shrunk image (a global skip, as many
    super-resolution networks have): the network learns the detail, which a few hundred CPU steps can, so its
    reconstructions stay close to the photo while every pixel passes through its up-sampling layers. An ``ae``
    encodes the full image with strided convolutions, an ``sr`` decoder sees only the shrunk image.
    """
    torch = _require_torch()
    low = _to_tensor(_shrink(batch, cfg.stride)).to(device)
    base = torch.nn.functional.interpolate(low, scale_factor=cfg.stride, mode="bilinear", align_corners=False)
    inp = _to_tensor(batch).to(device) if cfg.kind == "ae" else low
    return base + model(inp)


def _l1(model: Any, cfg: DecoderConfig, batch: np.ndarray, device: str) -> float:
    """Mean absolute error (in [-1, 1] units) of the reconstructions of ``batch``."""
    torch = _require_torch()
    with torch.no_grad():
        return float(torch.nn.functional.l1_loss(_forward(model, cfg, batch, device), _to_tensor(batch).to(device)))


def _patches(arrays: list[np.ndarray], rng: np.random.Generator, n: int, patch: int) -> np.ndarray:
    out = np.empty((n, patch, patch, 3), np.float32)
    for i in range(n):
        a = arrays[int(rng.integers(len(arrays)))]
        top, left = int(rng.integers(a.shape[0] - patch + 1)), int(rng.integers(a.shape[1] - patch + 1))
        p = a[top : top + patch, left : left + patch]
        if rng.random() < 0.5:
            p = p[:, ::-1]
        out[i] = p
    return out


class DecoderZoo:
    """Small trained decoders whose reconstructions of a photo are aligned self-made fakes.

    Build one with :func:`train_decoder_zoo` or :meth:`load`; ``zoo.reconstruct(image, k)`` runs member ``k``.
    """

    def __init__(self, configs: list[DecoderConfig], models: list[Any], info: dict[str, Any] | None = None) -> None:
        self.configs = configs
        self.models = models
        self.info = info or {}

    def __len__(self) -> int:
        return len(self.models)

    @property
    def names(self) -> list[str]:
        """Method names of the members, ``zoo-<kind>-<k>`` (used as the fake's generator)."""
        return [f"zoo-{c.kind}-{k}" for k, c in enumerate(self.configs)]

    def reconstruct(self, image: Image.Image, k: int, *, threads: int | None = 1) -> Image.Image:
        """Member ``k``'s reconstruction of the whole image at its size (reflect-padded to the stride, cropped)."""
        torch = _require_torch()
        if not 0 <= k < len(self.models):
            raise GendetectError(f"decoder zoo has {len(self.models)} members; got k={k}")
        cfg, model = self.configs[k], self.models[k]
        image = image.convert("RGB")
        w, h = image.size
        x = _pad_to(np.asarray(image, np.float32), cfg.stride)
        with _torch_threads(threads), torch.no_grad():
            out = _forward(model, cfg, x[None])[0].clamp(-1, 1).cpu()
        y = ((out.numpy().transpose(1, 2, 0) + 1.0) * 127.5)[:h, :w]
        return Image.fromarray(np.clip(y + 0.5, 0, 255).astype(np.uint8))

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to the folder ``path``; returns it."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"{k}.{name}": t.detach().contiguous().clone()
            for k, m in enumerate(self.models)
            for name, t in m.state_dict().items()
        }
        save_file(tensors, str(path / WEIGHTS_FILE))
        user_mode(path / WEIGHTS_FILE)
        config = {
            "format": ZOO_FORMAT,
            "version": ZOO_VERSION,
            "models": [dataclasses.asdict(c) for c in self.configs],
            "info": self.info,
        }
        (path / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> DecoderZoo:
        """Read a zoo written by :meth:`save` (or by earlier versions, as ``weights.safetensors``)."""
        _require_torch()
        from safetensors.torch import load_file

        path = Path(path)
        try:
            config = json.loads((path / "config.json").read_text())
            tensors = load_file(str(weights_file(path)))
        except (OSError, ValueError) as e:
            raise ModelFormatError(f"{path} is not a decoder zoo (config.json + {WEIGHTS_FILE}): {e}") from e
        if config.get("format") != ZOO_FORMAT:
            raise ModelFormatError(f"{path}/config.json has format {config.get('format')!r}, not {ZOO_FORMAT!r}")
        configs = [DecoderConfig(**c) for c in config["models"]]
        models = []
        for k, cfg in enumerate(configs):
            model = _build(cfg)
            prefix = f"{k}."
            model.load_state_dict({n[len(prefix) :]: t for n, t in tensors.items() if n.startswith(prefix)})
            model.eval()
            models.append(model)
        return cls(configs, models, config.get("info"))


def train_decoder_zoo(
    images: Sequence[Image.Image],
    n_models: int = 6,
    seed: int = 0,
    steps: int = 300,
    patch: int = 64,
    batch_size: int = 8,
    lr: float = 2e-3,
    device: str = "cpu",
    widths: Sequence[int] = (8, 12, 16),
    threads: int | None = 1,
) -> DecoderZoo:
    """Train ``n_models`` random small decoders on random ``patch`` x ``patch`` crops of ``images`` (L1 loss).

    Deterministic per ``seed`` on CPU (one torch thread by default). Each member costs a few seconds at the
    defaults. Images smaller than ``patch`` are reflect-padded.
    """
    torch = _require_torch()
    if not images:
        raise GendetectError("train_decoder_zoo needs at least one image")
    if patch % 8:
        raise GendetectError(f"patch must be a multiple of 8 (the largest stride), got {patch}")
    arrays = []
    for im in images:
        a = np.asarray(im.convert("RGB"), np.float32)
        if min(a.shape[:2]) < patch:
            a = np.pad(a, [(0, max(patch - a.shape[0], 0)), (0, max(patch - a.shape[1], 0)), (0, 0)], "symmetric")
        arrays.append(a)
    configs, models, losses = [], [], []
    with _torch_threads(threads):
        for k in range(n_models):
            rng = np.random.default_rng([seed, k])
            cfg = DecoderConfig.draw(rng, seed=seed * 1000 + k, width_choices=widths)
            torch.manual_seed(cfg.seed)
            model = _build(cfg).to(device)
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            held = _patches(arrays, np.random.default_rng([seed, k, 1]), 2 * batch_size, patch)
            first = _l1(model, cfg, held, device)
            for _ in range(steps):
                batch = _patches(arrays, rng, batch_size, patch)
                loss = torch.nn.functional.l1_loss(_forward(model, cfg, batch, device), _to_tensor(batch).to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
            losses.append((first, _l1(model, cfg, held, device)))
            model = model.cpu().eval()
            logger.info("decoder zoo member %d %s: L1 %.4f -> %.4f", k, cfg, *losses[-1])
            configs.append(cfg)
            models.append(model)
    info = {"seed": seed, "steps": steps, "patch": patch, "batch_size": batch_size, "lr": lr, "l1_first_last": losses}
    return DecoderZoo(configs, models, info)


# -- matched post-processing -----------------------------------------------------------------------------------
MATCHED_POSTS: tuple[str, ...] = (
    "png",
    "jpeg:70~95",
    "jpeg:85~98,444",
    "webp:70~95",
    "crop:0.6~0.95+png",
    "crop:0.6~0.95+jpeg:70~95",
    "resize:0.5~0.9,bicubic|lanczos|area+jpeg:75~95",
    "resize:0.5~0.9,bicubic|lanczos|area+png",
)
"""Post-processing drawn for a real/fake pair: every pair gets the same crop box, size and compression."""


def matched_pair(
    real: Image.Image, fake: Image.Image, seed: int, posts: Sequence[str] = MATCHED_POSTS
) -> tuple[Image.Image, Image.Image, str]:
    """Apply the SAME random post-processing (one of ``posts``, same crop box, size and quality) to both images.

    Returns:
        The processed real, the processed fake and the concrete spec applied to both (e.g. ``"jpeg:83,420"``).
    """
    if real.size != fake.size:
        raise GendetectError(f"matched_pair needs images of one size, got {real.size} and {fake.size}")
    rng = np.random.default_rng([seed, 7919])
    spec = posts[int(rng.integers(len(posts)))]
    chain = BenignChain(spec)
    draw_seed = int(rng.integers(2**31))
    real_out, applied = chain.apply(real, draw_seed)
    fake_out, applied_fake = chain.apply(fake, draw_seed)
    if applied != applied_fake:  # the draws depend on the seed and the size only; this would be a bug
        raise BenignError(f"matched_pair drew different post-processing: {applied} vs {applied_fake}")
    return real_out, fake_out, applied


class SelfmadeSample(NamedTuple):
    """One image of a self-made set (unpacks as ``image, label, generator, pair, post``)."""

    image: Image.Image
    label: str  # "real" | "fake"
    generator: str  # "real", or "selfmade:<method>" (a family for leave-one-family-out)
    pair: int  # index of the source photo in ``reals``: keep a pair in one fold
    post: str  # the matched post-processing applied to the pair ("" without matching)


def make_selfmade_set(
    reals: Sequence[Image.Image],
    seed: int = 0,
    methods: Sequence[str] | None = None,
    zoo: DecoderZoo | None = None,
    *,
    match: bool = True,
    posts: Sequence[str] = MATCHED_POSTS,
) -> list[SelfmadeSample]:
    """One aligned fake per real photo, with the real copy post-processed the same way, as a flat list.

    Args:
        reals: real RGB photos.
        seed: everything is deterministic given it.
        methods: names of :data:`SELFMADE` and of ``zoo.names``; the default is every cascade plus every zoo
            member. Methods are used in turn (shuffled), so each gets about ``len(reals) / len(methods)`` photos.
        zoo: a trained :class:`DecoderZoo`, for ``zoo-*`` methods.
        match: post-process each pair with :func:`matched_pair`; without it the real and fake are returned as made.
        posts: the post-processing specs ``matched_pair`` draws from.

    Returns:
        ``2 * len(reals)`` samples: for each photo ``i``, its real copy then its fake, both with ``pair == i``.
    """
    zoo_names = zoo.names if zoo is not None else []
    pool = list(methods) if methods is not None else SELFMADE.list() + zoo_names
    for m in pool:
        if m not in zoo_names:
            SELFMADE.get(m)  # unknown names list the valid ones
    if not pool:
        raise GendetectError("make_selfmade_set needs at least one method")
    order = np.random.default_rng([seed, 1]).permutation(len(reals)) % len(pool)
    out: list[SelfmadeSample] = []
    for i, real in enumerate(reals):
        real = real.convert("RGB")
        method = pool[int(order[i])]
        if method in zoo_names:
            fake = zoo.reconstruct(real, zoo_names.index(method))  # type: ignore[union-attr]
        else:
            fake = SELFMADE.create(method)(real, np.random.default_rng([seed, 2, i]))
        post = ""
        if match:
            real, fake, post = matched_pair(real, fake, int(np.random.default_rng([seed, 3, i]).integers(2**31)), posts)
        out.append(SelfmadeSample(real, "real", "real", i, post))
        out.append(SelfmadeSample(fake, "fake", f"selfmade:{method}", i, post))
    return out
