"""The generator registry: which text-to-image model makes the fakes, and how it is sampled.

Each entry of :data:`GENERATORS` is a :class:`GeneratorSpec`: a backend (``"diffusers"`` or ``"glide"``), a diffusers
repository (hub id or local folder) with its revision and pipeline class, and the sampling settings -- scheduler,
steps, guidance scale and resolution -- each either fixed or a range / list of choices drawn per image from a seeded
RNG (:meth:`GeneratorSpec.draw`). Besides the named entries (``gendetect list generators``), any diffusers
text-to-image repository is a generator under the name ``diffusers:ORG/REPO[@REV]`` or ``diffusers:/local/folder``.

Example:
    >>> spec = get_generator("sd14")
    >>> spec.repo, spec.steps, spec.guidance
    ('CompVis/stable-diffusion-v1-4', 50, 7.5)
    >>> get_generator("diffusers:org/model@abc123").revision
    'abc123'
    >>> s = get_generator("sd14", steps=(20, 40), scheduler=("ddim", "euler"))
    >>> s.draw(seed=3) == s.draw(seed=3)
    True

Loading (:func:`load_generator`) goes through :func:`gendetect.hub.resolve_snapshot`: a local folder, the
``GENDETECT_CACHE`` folder, the Hugging Face cache, then the hub (never offline); a miss raises
:class:`~gendetect.errors.WeightsNotFoundError` with the command that fetches the repository.
"""

from __future__ import annotations

import dataclasses
import gc
import inspect
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from gendetect.errors import GendetectError, UnknownNameError, require
from gendetect.features.torch_base import require_diffusers
from gendetect.hub import HubSpec
from gendetect.registry import Registry

logger = logging.getLogger(__name__)

DIFFUSERS_PREFIX = "diffusers:"
GLIDE_INSTALL = "pip install git+https://github.com/openai/glide-text2im"

# a setting is fixed (a value), a range (a 2-tuple of numbers, drawn uniformly) or a list of choices
Steps = int | tuple[int, int] | list[int]
Guidance = float | tuple[float, float] | list[float]
Scheduler = str | tuple[str, ...] | list[str]
Resolution = None | int | tuple[int, int] | list[Any]  # None: the model's default; int: square; (h, w)

SCHEDULERS = {  # name -> (diffusers class, extra config)
    "default": (None, {}),  # whatever the repository ships
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm++2m": ("DPMSolverMultistepScheduler", {}),
    "dpm++2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "unipc": ("UniPCMultistepScheduler", {}),
}

# pipeline classes that take a prompt but need another input too, or do not make still images
_NOT_TEXT_TO_IMAGE = (
    "Img2Img",
    "Inpaint",
    "ControlNet",
    "Upscale",
    "Depth2Img",
    "Video",
    "Audio",
    "InstructPix2Pix",
    "ImageVariation",
    "Adapter",
    "Prior",
    "Music",
    "Shap",
    "3D",
)


@dataclass(frozen=True)
class GeneratorSpec:
    """How to make fakes with one text-to-image model."""

    name: str  # registry name, recorded as each fake's ``generator`` ("sd14", "diffusers:org/repo")
    repo: str  # diffusers repository: hub id "ORG/REPO" or a local folder ("" for non-diffusers backends)
    revision: str | None = None  # git revision of the hub repository (None: main; the resolved commit is recorded)
    backend: str = "diffusers"  # "diffusers" | "glide"
    pipeline_class: str | None = None  # diffusers pipeline class; None: auto (DiffusionPipeline reads model_index)
    variant: str | None = None  # weight variant on GPU ("fp16"); CPU always loads the float32 weights
    scheduler: Scheduler = "default"  # a name of SCHEDULERS, or choices drawn per image
    steps: Steps = 50  # denoising steps, or a (lo, hi) range drawn per image, or choices
    guidance: Guidance = 7.5  # classifier-free guidance scale, or a (lo, hi) range, or choices
    resolution: Resolution = None  # output size: None (model default), side, (height, width), or choices
    license: str | None = None  # licence of the weights, recorded on each fake
    call_kwargs: dict[str, Any] = field(default_factory=dict)  # extra pipeline() arguments (e.g. negative_prompt)
    notes: str = ""  # one line for `gendetect list generators`

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    def draw(self, seed: int) -> dict[str, Any]:
        """The sampling settings of one image: ``scheduler``, ``steps``, ``guidance``, ``height``, ``width``.

        Fixed settings are returned as they are; ranges and choices are drawn from ``numpy.random.default_rng(seed)``
        so the same seed always gives the same settings. ``height``/``width`` are None for the model's default.
        """
        rng = np.random.default_rng(seed)
        steps = _draw(self.steps, rng, integer=True)
        guidance = _draw(self.guidance, rng, integer=False)
        scheduler = _draw(self.scheduler, rng, integer=False)
        res = self.resolution
        if isinstance(res, list):
            res = res[int(rng.integers(len(res)))]
        if res is None:
            h = w = None
        elif isinstance(res, int):
            h = w = res
        else:
            h, w = int(res[0]), int(res[1])
        return {
            "scheduler": str(scheduler),
            "steps": int(steps),
            "guidance": round(float(guidance), 2),
            "height": h,
            "width": w,
        }

    def validate(self) -> None:
        """Raise :class:`GendetectError` for an unknown scheduler or backend (checked before any work starts)."""
        if self.backend not in BACKENDS:
            raise GendetectError(f"{self.name}: unknown backend {self.backend!r}; valid: {', '.join(BACKENDS)}")
        names = [self.scheduler] if isinstance(self.scheduler, str) else list(self.scheduler)
        for n in names:
            if n not in SCHEDULERS:
                raise UnknownNameError(
                    f"{self.name}: unknown scheduler {n!r}; valid schedulers: {', '.join(SCHEDULERS)}"
                )


def _draw(value: Any, rng: np.random.Generator, *, integer: bool) -> Any:
    if isinstance(value, list):
        return value[int(rng.integers(len(value)))]
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
        lo, hi = value
        return int(rng.integers(int(lo), int(hi) + 1)) if integer else float(rng.uniform(lo, hi))
    if isinstance(value, tuple):  # a tuple of choices (schedulers)
        return value[int(rng.integers(len(value)))]
    return value


GENERATORS: Registry[Any] = Registry("generator")
"""Named generators: ``GENERATORS.create(name, **overrides)`` returns a :class:`GeneratorSpec`."""

BACKENDS = ("diffusers", "glide")


def register_generator(spec: GeneratorSpec, *, overwrite: bool = False) -> GeneratorSpec:
    """Add ``spec`` to :data:`GENERATORS` under ``spec.name`` (e.g. a tiny test pipeline or a private model)."""
    GENERATORS.register(spec.name, overwrite=overwrite)(partial(dataclasses.replace, spec))
    return spec


def get_generator(name: str, **overrides: Any) -> GeneratorSpec:
    """The :class:`GeneratorSpec` of a registry name or of ``diffusers:ORG/REPO[@REV]`` / ``diffusers:/folder``.

    Args:
        name: registry name (``sd14``) or a ``diffusers:`` spec.
        overrides: fields to replace (``steps=(20, 50)``, ``scheduler=("ddim", "euler")``); None keeps the default.

    Raises:
        UnknownNameError: an unknown name; the message lists close matches.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if name.startswith(DIFFUSERS_PREFIX):
        target = name[len(DIFFUSERS_PREFIX) :].strip()
        repo, rev = target, None
        if not Path(target).exists():  # ORG/REPO[@REV], parsed as the weights resolver does
            hub = HubSpec.parse(target)
            repo, rev = hub.repo_id, hub.revision
        if not repo:
            raise UnknownNameError(f"{name!r}: expected diffusers:ORG/REPO[@REVISION] or diffusers:/path/to/folder")
        spec = GeneratorSpec(name=name, repo=repo, revision=rev or None, steps=30, guidance=7.5)
        return dataclasses.replace(spec, **overrides) if overrides else spec
    return GENERATORS.create(name, **overrides)


def list_generators(pattern: str = "*") -> list[str]:
    """Registered generator names matching a shell wildcard."""
    return GENERATORS.list(pattern)


for _spec in (
    GeneratorSpec(
        "sd14",
        "CompVis/stable-diffusion-v1-4",
        scheduler="pndm",
        license="creativeml-openrail-m",
        notes="Stable Diffusion 1.4, 512 px (COCOFake, Coccomini)",
    ),
    GeneratorSpec(
        "sd15",
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        scheduler="pndm",
        license="creativeml-openrail-m",
        notes="Stable Diffusion 1.5, 512 px",
    ),
    GeneratorSpec(
        "sd20",
        "stabilityai/stable-diffusion-2-base",
        scheduler="default",
        license="openrail++",
        notes="Stable Diffusion 2.0 base, 512 px (COCOFake)",
    ),
    GeneratorSpec(
        "sd20-768",
        "stabilityai/stable-diffusion-2",
        scheduler="default",
        license="openrail++",
        notes="Stable Diffusion 2.0, 768 px v-prediction",
    ),
    GeneratorSpec(
        "sd21",
        "stabilityai/stable-diffusion-2-1-base",
        scheduler="default",
        license="openrail++",
        notes="Stable Diffusion 2.1 base, 512 px",
    ),
    GeneratorSpec(
        "sd21-768",
        "stabilityai/stable-diffusion-2-1",
        scheduler="default",
        license="openrail++",
        notes="Stable Diffusion 2.1, 768 px v-prediction",
    ),
    GeneratorSpec(
        "sdxl",
        "stabilityai/stable-diffusion-xl-base-1.0",
        variant="fp16",
        steps=40,
        guidance=5.0,
        license="openrail++",
        notes="SDXL base 1.0, 1024 px",
    ),
    GeneratorSpec(
        "sdxl-turbo",
        "stabilityai/sdxl-turbo",
        variant="fp16",
        steps=1,
        guidance=0.0,
        resolution=512,
        license="sai-nc-community",
        notes="SDXL Turbo, 1 step, 512 px",
    ),
    GeneratorSpec(
        "pixart",
        "PixArt-alpha/PixArt-XL-2-1024-MS",
        steps=20,
        guidance=4.5,
        license="openrail++",
        notes="PixArt-alpha XL, 1024 px",
    ),
    GeneratorSpec(
        "pixart-sigma",
        "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",
        steps=20,
        guidance=4.5,
        license="openrail++",
        notes="PixArt-Sigma XL, 1024 px",
    ),
    GeneratorSpec(
        "kandinsky",
        "kandinsky-community/kandinsky-3",
        variant="fp16",
        steps=25,
        guidance=3.0,
        license="apache-2.0",
        notes="Kandinsky 3, 1024 px",
    ),
    GeneratorSpec(
        "deepfloyd-if",
        "DeepFloyd/IF-I-XL-v1.0",
        variant="fp16",
        steps=50,
        guidance=7.0,
        license="deepfloyd-if-license",
        notes="DeepFloyd IF stage I only: 64 px (gated: accept the licence on the hub)",
    ),
    GeneratorSpec(
        "playground-v2.5",
        "playgroundai/playground-v2.5-1024px-aesthetic",
        variant="fp16",
        steps=50,
        guidance=3.0,
        license="playground-v2dot5-community",
        notes="Playground v2.5, 1024 px",
    ),
    GeneratorSpec(
        "wuerstchen",
        "warp-ai/wuerstchen",
        steps=30,
        guidance=4.0,
        license="mit",
        notes="Wuerstchen v2, 1024 px",
    ),
    GeneratorSpec(
        "lcm-dreamshaper",
        "SimianLuo/LCM_Dreamshaper_v7",
        steps=4,
        guidance=8.0,
        license="mit",
        notes="Latent Consistency Model (Dreamshaper v7), 4 steps, 512 px",
    ),
    GeneratorSpec(
        "glide",
        "",
        backend="glide",
        steps=100,
        guidance=3.0,
        resolution=256,
        license="mit",
        notes=f"OpenAI GLIDE (filtered) base 64 px + upsampler 256 px; needs {GLIDE_INSTALL}",
    ),
):
    register_generator(_spec)


# -- loading ---------------------------------------------------------------------------------------------------
class TextToImage:
    """A loaded generator: ``generate(prompts, seeds, **settings)`` -> one :class:`Generated` per prompt."""

    spec: GeneratorSpec
    info: dict[str, Any]  # model_id, revision, pipeline_class: recorded on every fake

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        scheduler: str,
        steps: int,
        guidance: float,
        height: int | None,
        width: int | None,
    ) -> list[Generated]:
        raise NotImplementedError

    def close(self) -> None:
        """Free the model's memory."""


@dataclass
class Generated:
    """One output of a generator: an image, or why there is none."""

    image: Any | None  # PIL.Image.Image (RGB) or None
    nsfw: bool = False  # the pipeline's safety checker flagged (and blacked out) the image
    error: str | None = None


def load_generator(spec: GeneratorSpec, *, device: str | None = None) -> TextToImage:
    """Load ``spec``'s model onto ``device`` (default cpu), after checking it is a usable text-to-image pipeline.

    Raises:
        WeightsNotFoundError: the repository is neither a local folder nor in a cache (offline) or on the hub.
        GendetectError: the repository is not a text-to-image diffusers pipeline, or cannot be loaded.
        ImportError: the backend's package is missing (the message says how to install it).
    """
    spec.validate()
    if spec.backend == "glide":
        return GlideGenerator(spec, device=device)
    return DiffusersGenerator(spec, device=device)


def probe_repository(folder: str | os.PathLike) -> str:
    """The pipeline class of a diffusers repository folder, if it is usable for text-to-image.

    Raises:
        GendetectError: no ``model_index.json`` (not a diffusers pipeline repository), or a pipeline class that needs
            more than a prompt (img2img, inpainting, ControlNet...) or makes no still images.
    """
    index = Path(folder) / "model_index.json"
    if not index.is_file():
        raise GendetectError(
            f"{folder} has no model_index.json: not a diffusers pipeline repository (a single checkpoint, a LoRA or "
            "a component-only repository cannot generate on its own)"
        )
    try:
        cls = str(json.loads(index.read_text())["_class_name"])
    except (OSError, ValueError, KeyError) as e:
        raise GendetectError(f"{index} is unreadable or has no _class_name: {e}") from e
    bad = next((w for w in _NOT_TEXT_TO_IMAGE if w.lower() in cls.lower()), None)
    if bad:
        raise GendetectError(f"{folder}: pipeline {cls} is not text-to-image ({bad}); skipped")
    return cls


def _revision_of(folder: Path) -> str | None:
    """The commit hash of a Hugging Face cache snapshot folder (``.../snapshots/<sha>``), else None."""
    return folder.name if folder.parent.name == "snapshots" and len(folder.name) == 40 else None


def _license_of(folder: Path) -> str | None:
    """The ``license:`` of a hub model card's front matter (README.md), when present."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    try:
        lines = readme.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    if not lines or lines[0].strip() != "---":
        return None
    for line in lines[1:60]:
        if line.strip() == "---":
            break
        if line.lower().startswith("license:"):
            return line.split(":", 1)[1].strip().strip("'\"") or None
    return None


class DiffusersGenerator(TextToImage):
    """A diffusers text-to-image pipeline loaded from a resolved repository folder."""

    def __init__(self, spec: GeneratorSpec, *, device: str | None = None) -> None:
        import torch

        from gendetect.hub import resolve_snapshot

        diffusers = require_diffusers()
        self.spec, self.device = spec, device or "cpu"
        folder = resolve_snapshot(spec.repo, revision=spec.revision, what=f"generator {spec.name}")
        cls_name = probe_repository(folder)
        on_gpu = self.device.startswith("cuda")
        dtype = torch.float16 if on_gpu else torch.float32
        loader = getattr(diffusers, spec.pipeline_class) if spec.pipeline_class else diffusers.DiffusionPipeline
        # diffusers renamed torch_dtype to dtype (the old name warns); pass whichever this version reads
        dtype_key = "dtype" if hasattr(diffusers.utils.deprecation_utils, "_resolve_dtype") else "torch_dtype"
        kwargs: dict[str, Any] = {dtype_key: dtype}
        if on_gpu and spec.variant:
            kwargs["variant"] = spec.variant
        try:
            pipe = loader.from_pretrained(str(folder), **kwargs)
        except (OSError, ValueError, TypeError, AttributeError, ImportError, RuntimeError, KeyError) as e:
            raise GendetectError(
                f"generator {spec.name}: cannot load the {cls_name} pipeline from {folder}: {e}"
            ) from e
        params = inspect.signature(pipe.__call__).parameters
        if "prompt" not in params:
            raise GendetectError(f"generator {spec.name}: {type(pipe).__name__} takes no prompt; not text-to-image")
        required = [
            n
            for n, p in params.items()
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
            and n not in ("self", "prompt")
        ]
        if required:
            raise GendetectError(
                f"generator {spec.name}: {type(pipe).__name__} needs {', '.join(required)} besides the prompt"
            )
        pipe = pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe
        self._params = params
        self._schedulers: dict[str, Any] = {"default": pipe.scheduler}
        self.info = {
            "model_id": spec.repo if not Path(spec.repo).expanduser().exists() else str(Path(spec.repo).resolve()),
            "revision": spec.revision or _revision_of(folder),
            "pipeline_class": type(pipe).__name__,
            "weights_license": spec.license or _license_of(folder),
            "dtype": str(dtype).removeprefix("torch."),
        }

    def _scheduler(self, name: str) -> Any:
        if name not in self._schedulers:
            diffusers = require_diffusers()
            cls_name, extra = SCHEDULERS[name]
            cls = getattr(diffusers, cls_name)
            self._schedulers[name] = cls.from_config(self._schedulers["default"].config, **extra)
        return self._schedulers[name]

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        scheduler: str,
        steps: int,
        guidance: float,
        height: int | None,
        width: int | None,
    ) -> list[Generated]:
        import torch

        self.pipe.scheduler = self._scheduler(scheduler)
        gen_device = "cpu" if not self.device.startswith("cuda") else self.device
        generators = [torch.Generator(gen_device).manual_seed(int(s)) for s in seeds]
        kwargs: dict[str, Any] = {
            "prompt": list(prompts),
            "num_inference_steps": steps,
            "generator": generators,
            "output_type": "pil",
            **self.spec.call_kwargs,
        }
        if "guidance_scale" in self._params:
            kwargs["guidance_scale"] = guidance
        if height is not None and "height" in self._params:
            kwargs["height"], kwargs["width"] = height, width
        with torch.inference_mode():
            out = self.pipe(**kwargs)
        images = list(out.images)
        nsfw = getattr(out, "nsfw_content_detected", None) or [False] * len(images)
        return [Generated(im.convert("RGB"), nsfw=bool(flag)) for im, flag in zip(images, nsfw)]

    def close(self) -> None:
        self.pipe = None
        self._schedulers.clear()
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass


class GlideGenerator(TextToImage):
    """OpenAI's filtered GLIDE (base 64 px + upsampler to 256 px) through the ``glide-text2im`` package.

    ``glide-text2im`` is not on PyPI: ``pip install git+https://github.com/openai/glide-text2im``. Its checkpoints
    (``base``, ``upsample``) are fetched by the package itself into its own cache on first use.
    """

    def __init__(self, spec: GeneratorSpec, *, device: str | None = None) -> None:
        purpose, install = "the 'glide' generator", f"(not on PyPI) {GLIDE_INSTALL}"
        load_checkpoint = require("glide_text2im.download", None, purpose, install=install).load_checkpoint
        creation = require("glide_text2im.model_creation", None, purpose, install=install)
        create_model_and_diffusion = creation.create_model_and_diffusion
        model_and_diffusion_defaults = creation.model_and_diffusion_defaults
        model_and_diffusion_defaults_upsampler = creation.model_and_diffusion_defaults_upsampler
        import torch

        self.spec, self.device = spec, device or "cpu"
        self._torch = torch
        use_fp16 = self.device.startswith("cuda")
        opts = model_and_diffusion_defaults()
        opts["use_fp16"] = use_fp16
        self._opts = opts
        self.model, _ = create_model_and_diffusion(**opts)
        self.model.eval().to(self.device)
        if use_fp16:
            self.model.convert_to_fp16()
        self.model.load_state_dict(load_checkpoint("base", self.device))
        up_opts = model_and_diffusion_defaults_upsampler()
        up_opts["use_fp16"] = use_fp16
        self._up_opts = up_opts
        self.up_model, _ = create_model_and_diffusion(**up_opts)
        self.up_model.eval().to(self.device)
        if use_fp16:
            self.up_model.convert_to_fp16()
        self.up_model.load_state_dict(load_checkpoint("upsample", self.device))
        self._create = create_model_and_diffusion
        self.info = {
            "model_id": "openai/glide-text2im (base-filtered + upsample-filtered)",
            "revision": None,
            "pipeline_class": "glide-text2im",
            "weights_license": spec.license,
            "dtype": "float16" if use_fp16 else "float32",
        }

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        scheduler: str,
        steps: int,
        guidance: float,
        height: int | None,
        width: int | None,
    ) -> list[Generated]:
        from PIL import Image

        torch = self._torch
        results = []
        for prompt, seed in zip(prompts, seeds):
            torch.manual_seed(int(seed))
            _, diffusion = self._create(**{**self._opts, "timestep_respacing": str(steps)})
            tokens = self.model.tokenizer.encode(prompt)
            tokens, mask = self.model.tokenizer.padded_tokens_and_mask(tokens, self._opts["text_ctx"])
            uncond, umask = self.model.tokenizer.padded_tokens_and_mask([], self._opts["text_ctx"])
            model_kwargs = {
                "tokens": torch.tensor([tokens, uncond], device=self.device),
                "mask": torch.tensor([mask, umask], dtype=torch.bool, device=self.device),
            }

            def cfg_model(x_t: Any, ts: Any, **kw: Any) -> Any:
                half = x_t[: len(x_t) // 2]
                combined = torch.cat([half, half], dim=0)
                out = self.model(combined, ts, **kw)
                eps, rest = out[:, :3], out[:, 3:]
                cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
                half_eps = uncond_eps + guidance * (cond_eps - uncond_eps)
                return torch.cat([torch.cat([half_eps, half_eps], dim=0), rest], dim=1)

            side = self._opts["image_size"]
            base = diffusion.p_sample_loop(
                cfg_model,
                (2, 3, side, side),
                device=self.device,
                clip_denoised=True,
                progress=False,
                model_kwargs=model_kwargs,
            )[:1]
            _, up_diffusion = self._create(**{**self._up_opts, "timestep_respacing": "fast27"})
            tokens = self.up_model.tokenizer.encode(prompt)
            tokens, mask = self.up_model.tokenizer.padded_tokens_and_mask(tokens, self._up_opts["text_ctx"])
            up_kwargs = {
                "low_res": ((base + 1) * 127.5).round() / 127.5 - 1,
                "tokens": torch.tensor([tokens], device=self.device),
                "mask": torch.tensor([mask], dtype=torch.bool, device=self.device),
            }
            up_side = self._up_opts["image_size"]
            up = up_diffusion.ddim_sample_loop(
                self.up_model,
                (1, 3, up_side, up_side),
                noise=torch.randn((1, 3, up_side, up_side), device=self.device) * 0.997,
                device=self.device,
                clip_denoised=True,
                progress=False,
                model_kwargs=up_kwargs,
            )
            arr = ((up[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            results.append(Generated(Image.fromarray(arr, "RGB")))
        return results
