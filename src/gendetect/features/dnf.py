"""Diffusion Noise Features (DNF): the noise a pretrained diffusion model estimates while inverting an image.

DNF (Zhang and Xu, 2023) runs DDIM *inversion* (image -> noise) through a pretrained diffusion model and keeps the
UNet's noise estimate as the image's representation; a ResNet-50 trained on these maps separates real from generated
images. The authors' code needs every image converted to a DNF file in advance; here the extractor goes from a raw
decoded image to the map in one call, so a saved ``dnf`` + ``cnn`` model scans raw images directly
(``gendetect scan --model DIR img.jpg``) and the feature store caches the maps (key: image sha256 + this config).

Two kinds of diffusers repositories are supported (``kind="auto"`` picks from the folder):

* **pixel** models: a ``UNet2DModel`` + a DDPM/DDIM scheduler config, e.g. ``google/ddpm-bedroom-256`` (the ADM/DDPM
  family the authors used). Learned-variance UNets (``out_channels = 2 * in_channels``) keep the first half (the
  noise estimate).
* **latent** models (Stable Diffusion): the image is VAE-encoded (posterior *mean*, times
  ``vae.config.scaling_factor``, so the map is deterministic) and inverted in latent space by the
  ``UNet2DConditionModel`` conditioned on the empty-prompt text embedding. ``output="decoded"`` decodes the noise
  estimate back to an RGB-sized map through the VAE decoder; ``output="latent"`` keeps the ``(4, H/8, W/8)`` latent.

The inversion itself is diffusers' :class:`~diffusers.DDIMInverseScheduler`, built from the repository's scheduler
config with ``clip_sample=False`` (clipping the predicted image would make the inversion non-invertible).
``steps=1`` is the authors' fast setting: one UNet call per image at the first timestep (``t = timestep_offset``,
0 by default), exactly ``dnf = eps(x_0, 0)``. ``steps=N`` runs the whole N-step inversion and ``record`` says which
noise estimates become the map.

Weights are resolved with :func:`gendetect.hub.resolve_snapshot` (local folder, ``$GENDETECT_CACHE/ORG--REPO``, the
Hugging Face cache, the hub): a missing model raises :class:`~gendetect.errors.WeightsNotFoundError` with the command
that fetches it. There is deliberately no ``"random"`` option: tests save a tiny random model folder and load it
through this same path.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gendetect.errors import ModelFormatError
from gendetect.features.base import EXTRACTORS, FeatureExtractor
from gendetect.features.rgb import PREPROCESS, square_crop
from gendetect.features.torch_base import require_diffusers
from gendetect.hub import resolve_snapshot

logger = logging.getLogger(__name__)

KINDS = ("auto", "pixel", "latent")
RECORDS = ("last", "mean", "all", "inverted")
OUTPUTS = ("decoded", "latent")
NORMALIZE = ("minmax", "channel", "standard", "none")
PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
SCHEDULES = ("leading", "trailing")
DEFAULT_MODEL = "google/ddpm-bedroom-256"
# what a hub download fetches: the diffusion parts, never safety checkers or training checkpoints
ALLOW_PATTERNS = [
    "model_index.json",
    "config.json",
    "scheduler_config.json",
    "diffusion_pytorch_model.*",
    "unet/*",
    "vae/*",
    "text_encoder/*",
    "tokenizer/*",
    "scheduler/*",
]


@dataclass
class DNFInversion:
    """Everything one inversion of a batch recorded (torch tensors on the CPU, float32).

    Attributes:
        start: the inverted sample ``x_0``: ``(N, C, h, w)`` pixels in ``[-1, 1]`` or scaled VAE latents.
        noise: one noise estimate ``(N, C, h, w)`` per timestep, in inversion order.
        timesteps: the timesteps the UNet was called at, in inversion order.
        inverted: the sample after the last inversion step ``x_T``: ``(N, C, h, w)``.
    """

    start: Any
    noise: list[Any]
    timesteps: list[int]
    inverted: Any


@dataclass(frozen=True)
class _Layout:
    kind: str  # "pixel" | "latent"
    unet_dir: Path
    scheduler_config: Path
    folder: Path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"{path} is not a readable JSON config: {e}") from e


def _layout(folder: Path, kind: str) -> _Layout:
    """Where the UNet and scheduler config of a diffusers repository folder are, and which kind it is."""
    index = _read_json(folder / "model_index.json") if (folder / "model_index.json").is_file() else {}
    if kind == "auto":
        kind = "latent" if "vae" in index or (folder / "vae" / "config.json").is_file() else "pixel"
    if (folder / "unet" / "config.json").is_file():
        unet_dir = folder / "unet"
    elif (folder / "config.json").is_file() and kind == "pixel":  # a bare UNet2DModel repository
        unet_dir = folder
    else:
        raise ModelFormatError(
            f"{folder} holds no diffusion UNet: expected unet/config.json (a diffusers pipeline) or config.json of "
            "a UNet2DModel at its root."
        )
    unet_class = _read_json(unet_dir / "config.json").get("_class_name", "UNet2DModel")
    expected = "UNet2DModel" if kind == "pixel" else "UNet2DConditionModel"
    if unet_class != expected:
        raise ModelFormatError(
            f"{folder}: its UNet is a {unet_class}, but kind={kind!r} needs a {expected} (use kind='auto')."
        )
    scheduler = next(
        (p for p in (folder / "scheduler" / "scheduler_config.json", folder / "scheduler_config.json") if p.is_file()),
        None,
    )
    if scheduler is None:
        raise ModelFormatError(f"{folder} has no scheduler config (scheduler/scheduler_config.json).")
    if kind == "latent":
        missing = [p for p in ("vae", "text_encoder", "tokenizer") if not (folder / p).is_dir()]
        if missing:
            raise ModelFormatError(
                f"{folder} is used as a latent (Stable Diffusion) model but lacks {missing}; a latent DNF needs the "
                "VAE, the text encoder and the tokenizer of the repository."
            )
    return _Layout(kind, unet_dir, scheduler, folder)


@EXTRACTORS.register("dnf")
class DNFExtractor(FeatureExtractor):
    """DNF maps of images through a pretrained diffusers model; the feature vector is the flattened map.

    Args:
        model: a diffusers repository: hub id (``ORG/REPO[@REV]``, ``hf-hub:...``) or a local folder. Default
            ``google/ddpm-bedroom-256`` (a pixel-space DDPM UNet, 256 px), which must be in the cache.
        kind: ``"auto"`` (latent when the repository has a VAE), ``"pixel"`` or ``"latent"``.
        steps: DDIM inversion steps. 1 = the authors' single noise estimate at the first timestep (one UNet call per
            image); N = the whole N-step inversion (N UNet calls).
        schedule: timestep spacing of the inversion, ``"leading"`` (0, T/N, 2T/N, ... as the authors do) or
            ``"trailing"`` (..., T-1).
        timestep_offset: added to the leading timesteps (the repository's ``steps_offset`` is overridden: DNF starts
            at t = 0).
        record: which noise estimates make the map when ``steps > 1``: ``"last"``, ``"mean"`` over the steps,
            ``"all"`` (stacked along channels: ``steps * C`` channels) or ``"inverted"`` (the inverted sample x_T
            itself rather than a noise estimate).
        size: side of the square the model sees (pixels); ``None`` = the model's native resolution. Must be a
            multiple of the UNet's (and VAE's) down-sampling factor.
        preprocess: ``"center-crop"`` (central square at full resolution, reflect-padded when smaller; keeps
            pixel-level traces) or ``"resize"`` (shorter side resized to ``size``, then centre crop).
        output: latent models only: ``"decoded"`` (VAE-decode the noise estimate to ``(3, size, size)``) or
            ``"latent"`` (``(4, size/8, size/8)``).
        normalize: per-image normalisation of each recorded map: ``"minmax"`` to [0, 1] over all channels (the
            authors' ``norm``), ``"channel"`` (min-max per channel), ``"standard"`` (zero mean, unit variance) or
            ``"none"``.
        device: "cpu" or "cuda".
        batch_size: images per UNet call.
        precision: "fp32", "fp16" or "bf16" for the networks (maps are returned as float32).
    """

    name = "dnf"
    batched = True

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        kind: str = "auto",
        steps: int = 1,
        schedule: str = "leading",
        timestep_offset: int = 0,
        record: str = "last",
        size: int | None = None,
        preprocess: str = "center-crop",
        output: str = "decoded",
        normalize: str = "minmax",
        device: str = "cpu",
        batch_size: int = 8,
        precision: str = "fp32",
    ) -> None:
        self.model = model
        self.kind = kind
        self.steps = steps
        self.schedule = schedule
        self.timestep_offset = timestep_offset
        self.record = record
        self.size = size
        self.preprocess = preprocess
        self.output = output
        self.normalize = normalize
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self.unet_calls = 0  # UNet forward passes so far (a batch counts once)
        self.unet_images = 0  # images through the UNet so far (one per image per step)
        self._nets: dict[str, Any] | None = None
        self._describe()

    # -- configuration -------------------------------------------------------------------------------------------
    def _check(self) -> None:
        for key, allowed in (
            ("kind", KINDS),
            ("record", RECORDS),
            ("output", OUTPUTS),
            ("normalize", NORMALIZE),
            ("precision", tuple(PRECISIONS)),
            ("schedule", SCHEDULES),
            ("preprocess", PREPROCESS),
        ):
            if getattr(self, key) not in allowed:
                raise ValueError(f"dnf {key} must be one of {allowed}, got {getattr(self, key)!r}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"dnf steps must be an integer >= 1, got {self.steps!r}")

    def _describe(self) -> None:
        """Resolve the repository and derive the map shape from its configs (no weights are loaded yet)."""
        self._check()
        folder = resolve_snapshot(self.model, allow_patterns=ALLOW_PATTERNS, what=f"DNF diffusion model {self.model}")
        self._layout = _layout(folder, self.kind)
        unet = _read_json(self._layout.unet_dir / "config.json")
        self._scheduler_config = _read_json(self._layout.scheduler_config)
        prediction = self._scheduler_config.get("prediction_type", "epsilon")
        if prediction != "epsilon":
            raise ModelFormatError(
                f"{self.model}: the scheduler's prediction_type is {prediction!r}; DNF needs a noise (epsilon) "
                "predicting model (e.g. SD 1.x, SD 2 base, DDPM/ADM)."
            )
        channels = int(unet.get("in_channels", 3))
        unet_factor = 2 ** (len(unet.get("block_out_channels", (0,))) - 1)
        sample = unet.get("sample_size") or 256
        sample = sample[0] if isinstance(sample, list | tuple) else int(sample)
        if self._layout.kind == "pixel":
            vae_factor, out_channels = 1, channels
        else:
            vae = _read_json(self._layout.folder / "vae" / "config.json")
            vae_factor = 2 ** (len(vae.get("block_out_channels", (0,))) - 1)
            out_channels = 3 if self.output == "decoded" else channels
        size = int(self.size or sample * vae_factor)
        if size % (vae_factor * unet_factor):
            raise ValueError(
                f"dnf size {size} must be a multiple of {vae_factor * unet_factor} for {self.model} "
                f"(its {'VAE and ' if vae_factor > 1 else ''}UNet down-sample by that factor)."
            )
        self._input_size = size
        self._latent_size = size // vae_factor
        self._channels = channels
        side = size if (self._layout.kind == "pixel" or self.output == "decoded") else self._latent_size
        per_map = out_channels
        n_maps = self.steps if self.record == "all" else 1
        self.map_channels = per_map  # channels of one recorded map (3 = viewable as RGB)
        self.map_shape = (per_map * n_maps, side, side)
        self.dim = int(np.prod(self.map_shape))

    @property
    def model_kind(self) -> str:
        """``"pixel"`` or ``"latent"``, as resolved from the repository."""
        return self._layout.kind

    def scheduler_config(self) -> dict[str, Any]:
        """The scheduler config used for the inversion: the repository's, with DNF's overrides."""
        cfg = {k: v for k, v in self._scheduler_config.items() if not k.startswith("_")}
        cfg.update(clip_sample=False, timestep_spacing=self.schedule, steps_offset=self.timestep_offset)
        return cfg

    def sampling_scheduler(self) -> Any:
        """A :class:`~diffusers.DDIMScheduler` matching the inversion (same betas, spacing and offset): replaying
        the recorded noise through it, in reverse, returns the inverted input."""
        diffusers = require_diffusers()
        sched = _scheduler(diffusers.DDIMScheduler, self.scheduler_config())
        sched.set_timesteps(self.steps)
        return sched

    # -- networks --------------------------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        if self._nets is not None:
            return self._nets
        diffusers = require_diffusers()
        import torch

        dtype = getattr(torch, PRECISIONS[self.precision])
        folder = self._layout.folder
        sub = "unet" if self._layout.unet_dir != folder else None
        nets: dict[str, Any] = {}
        try:
            if self._layout.kind == "pixel":
                nets["unet"] = diffusers.UNet2DModel.from_pretrained(str(folder), subfolder=sub, torch_dtype=dtype)
            else:
                from transformers import CLIPTextModel, CLIPTokenizer

                nets["unet"] = diffusers.UNet2DConditionModel.from_pretrained(
                    str(folder), subfolder=sub, torch_dtype=dtype
                )
                nets["vae"] = diffusers.AutoencoderKL.from_pretrained(str(folder), subfolder="vae", torch_dtype=dtype)
                tokenizer = CLIPTokenizer.from_pretrained(str(folder), subfolder="tokenizer")
                text_encoder = CLIPTextModel.from_pretrained(str(folder), subfolder="text_encoder", torch_dtype=dtype)
        except (OSError, ValueError) as e:
            raise ModelFormatError(f"DNF model {self.model} ({folder}) could not be loaded: {e}") from e
        for net in nets.values():
            net.requires_grad_(False).eval().to(self.device)
        if self._layout.kind == "latent":
            ids = tokenizer(
                [""], padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
            ).input_ids
            with torch.no_grad():  # (1, tokens, dim): the empty prompt, computed once
                nets["cond"] = text_encoder.to(self.device)(ids.to(self.device))[0].to(dtype=dtype)
            del text_encoder
        nets["inverse"] = _scheduler(diffusers.DDIMInverseScheduler, self.scheduler_config())
        self._nets = nets
        logger.info("DNF %s model %s loaded on %s (%s)", self._layout.kind, self.model, self.device, self.precision)
        return nets

    def _eps(self, x: Any, t: Any) -> Any:
        """One UNet call: the noise estimate at timestep ``t`` for the batch ``x``."""
        nets = self._nets
        self.unet_calls += 1
        self.unet_images += int(x.shape[0])
        if self._layout.kind == "pixel":
            out = nets["unet"](x, t).sample
        else:
            cond = nets["cond"].expand(x.shape[0], -1, -1)
            out = nets["unet"](x, t, encoder_hidden_states=cond).sample
        return out[:, : x.shape[1]]  # learned-variance models predict [eps, variance]

    # -- the inversion ---------------------------------------------------------------------------------------------
    def pixels(self, images: Sequence[Image.Image]) -> Any:
        """The model input: ``(N, 3, size, size)`` float32 tensor in ``[-1, 1]`` (per ``size``/``preprocess``)."""
        import torch

        arr = np.stack([square_crop(im, self._input_size, self.preprocess) for im in images])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    def invert(self, images: Sequence[Image.Image]) -> DNFInversion:
        """Run the DDIM inversion of a batch of images and return everything it recorded (see :class:`DNFInversion`)."""
        import torch

        nets = self._load()
        dtype = next(nets["unet"].parameters()).dtype
        x = self.pixels(images).to(self.device, dtype=dtype)
        sched = nets["inverse"]
        sched.set_timesteps(self.steps)
        with torch.no_grad():
            if self._layout.kind == "latent":
                vae = nets["vae"]
                x = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
            start = x
            noise, timesteps = [], []
            for t in sched.timesteps:
                eps = self._eps(x, t.to(self.device))
                noise.append(eps)
                timesteps.append(int(t))
                x = sched.step(eps, t, x).prev_sample
        return DNFInversion(_cpu(start), [_cpu(e) for e in noise], timesteps, _cpu(x))

    def maps(self, images: Sequence[Image.Image]) -> np.ndarray:
        """DNF maps of a batch: ``(N, *map_shape)`` float32 (normalised per ``normalize``)."""
        import torch

        out = []
        for i in range(0, len(images), self.batch_size):
            inv = self.invert(images[i : i + self.batch_size])
            if self.record == "inverted":
                recorded = [inv.inverted]
            elif self.record == "mean":
                recorded = [torch.stack(inv.noise).mean(0)]
            elif self.record == "all":
                recorded = inv.noise
            else:
                recorded = [inv.noise[-1]]
            if self._layout.kind == "latent" and self.output == "decoded":
                recorded = [self._decode(r) for r in recorded]
            out.append(np.concatenate([_normalize(r.numpy(), self.normalize) for r in recorded], axis=1))
        if not out:
            return np.zeros((0, *self.map_shape), np.float32)
        return np.concatenate(out).astype(np.float32)

    def _decode(self, latent: Any) -> Any:
        import torch

        vae = self._nets["vae"]
        param = next(vae.parameters())
        with torch.no_grad():
            z = latent.to(self.device, dtype=param.dtype) / vae.config.scaling_factor
            return vae.decode(z).sample.float().cpu()

    # -- FeatureExtractor ------------------------------------------------------------------------------------------
    def extract_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return self.maps(list(images)).reshape(len(images), -1)

    def extract_one(self, image: Image.Image) -> np.ndarray:
        return self.extract_batch([image])[0]

    def __getstate__(self) -> dict[str, Any]:  # worker processes rebuild the networks from the config
        state = dict(self.__dict__)
        state["_nets"] = None
        return state


def _cpu(t: Any) -> Any:
    return t.float().cpu()


def _scheduler(cls: Any, config: dict[str, Any]) -> Any:
    """``cls.from_config`` with only the keys ``cls`` knows (DDPM configs carry a few DDIM does not use)."""
    known = set(inspect.signature(cls.__init__).parameters)
    return cls.from_config({k: v for k, v in config.items() if k in known})


def _normalize(m: np.ndarray, how: str) -> np.ndarray:
    """Per-image normalisation of maps ``(N, C, H, W)`` (see :class:`DNFExtractor` ``normalize``)."""
    m = m.astype(np.float32)
    if how == "none":
        return m
    if how == "standard":
        mean = m.mean(axis=(1, 2, 3), keepdims=True)
        std = m.std(axis=(1, 2, 3), keepdims=True)
        return (m - mean) / np.maximum(std, 1e-8)
    axes = (2, 3) if how == "channel" else (1, 2, 3)
    lo, hi = m.min(axis=axes, keepdims=True), m.max(axis=axes, keepdims=True)
    return (m - lo) / np.maximum(hi - lo, 1e-8)


def map_to_image(m: np.ndarray, channels: int = 3) -> Image.Image:
    """A viewable picture of one map ``(C, H, W)``: each channel min-max normalised; groups of 3 channels as RGB
    tiles, other channel counts as grey tiles, side by side."""
    m = np.asarray(m, np.float32)
    lo, hi = m.min(axis=(1, 2), keepdims=True), m.max(axis=(1, 2), keepdims=True)
    u8 = np.round(255 * (m - lo) / np.maximum(hi - lo, 1e-8)).astype(np.uint8)
    if channels == 3 and u8.shape[0] % 3 == 0:
        tiles = [u8[i : i + 3].transpose(1, 2, 0) for i in range(0, u8.shape[0], 3)]
    else:
        tiles = [np.repeat(c[:, :, None], 3, axis=2) for c in u8]
    gap = np.full((u8.shape[1], max(2, u8.shape[2] // 32), 3), 255, np.uint8)
    row = [t for tile in tiles for t in (tile, gap)][:-1]
    return Image.fromarray(np.concatenate(row, axis=1))


def save_map_images(
    sources: Sequence[str | Path], extractor: FeatureExtractor, *, suffix: str | None = None
) -> list[tuple[str, Path | None, str | None]]:
    """Write a viewable PNG of each image's feature map next to it: ``photo.jpg`` -> ``photo.jpg.dnf.png``.

    Works for any extractor with a ``map_shape`` (``dnf``, ``rgb``). Returns one ``(source, png path or None, error
    or None)`` per source; an unreadable image gets an error and the others go on.
    """
    from gendetect.errors import ImageLoadError
    from gendetect.imageio import load_image

    shape = getattr(extractor, "map_shape", None)
    if shape is None:
        raise ValueError(f"extractor {extractor.name!r} produces vectors, not maps: nothing to show (try dnf or rgb).")
    suffix = suffix or f".{extractor.name}.png"
    out: list[tuple[str, Path | None, str | None]] = []
    for src in sources:
        try:
            image = load_image(src)
        except ImageLoadError as e:
            out.append((str(src), None, str(e)))
            continue
        m = np.asarray(extractor.extract_batch([image]), np.float32).reshape(shape)
        target = Path(f"{src}{suffix}")
        map_to_image(m, getattr(extractor, "map_channels", shape[0])).save(target)
        out.append((str(src), target, None))
    return out
