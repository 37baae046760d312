"""Tiny random-weight Stable Diffusion pipelines for tests and benchmarks (no download, CPU, milliseconds).

Modelled on diffusers' ``get_dummy_components()`` (tests/pipelines/stable_diffusion): a UNet with block channels
(4, 8), a two-block VAE (latent factor 2), a 2-layer CLIP text encoder with hidden size 32 and a CLIP tokenizer built
offline from a byte-level vocabulary written next to it (no BPE merges: every byte is a token). Default output size is
32 x 32 pixels (UNet sample size 16, VAE factor 2).

Example:
    >>> path = save_tiny_sd_pipeline(tmp / "tiny-sd")          # doctest: +SKIP
    >>> pipe = DiffusionPipeline.from_pretrained(path)          # doctest: +SKIP
    >>> pipe("a cat", num_inference_steps=2).images[0].size      # doctest: +SKIP
    (32, 32)
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable unicode map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def write_tiny_clip_tokenizer_files(folder: str | Path) -> Path:
    """Write ``vocab.json`` + ``merges.txt`` of a byte-level CLIP tokenizer (514 tokens, no merges) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return folder


def tiny_clip_tokenizer(folder: str | Path | None = None) -> Any:
    """A ``CLIPTokenizer`` built offline (from files written to ``folder``, a temporary folder by default)."""
    from transformers import CLIPTokenizer

    folder = write_tiny_clip_tokenizer_files(folder or tempfile.mkdtemp(prefix="tiny-clip-tok-"))
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def tiny_sd_components(seed: int = 0) -> dict[str, Any]:
    """Seeded components of a tiny ``StableDiffusionPipeline`` (same seed -> same weights).

    Returns:
        ``unet``, ``scheduler`` (DDIM), ``vae``, ``text_encoder``, ``tokenizer``, ``safety_checker`` (None),
        ``feature_extractor`` (None), ``image_encoder`` (None), ready for ``StableDiffusionPipeline(**components)``.
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
        attention_head_dim=2,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
        sample_size=32,
    )
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=512,
            eos_token_id=513,
            pad_token_id=513,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=514,
            max_position_embeddings=77,
        )
    )
    return {
        "unet": unet.eval(),
        "scheduler": scheduler,
        "vae": vae.eval(),
        "text_encoder": text_encoder.eval(),
        "tokenizer": tiny_clip_tokenizer(),
        "safety_checker": None,
        "feature_extractor": None,
        "image_encoder": None,
    }


def save_tiny_sd_pipeline(path: str | Path, seed: int = 0) -> Path:
    """Save a tiny random ``StableDiffusionPipeline`` to ``path`` (loadable by ``DiffusionPipeline.from_pretrained``).

    Args:
        path: Output folder (created). It gets ``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``,
            ``tokenizer/`` and ``scheduler/``, as a hub diffusers repository has.
        seed: Weight seed; the same seed writes the same weights.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    from diffusers import StableDiffusionPipeline

    path = Path(path)
    pipe = StableDiffusionPipeline(**tiny_sd_components(seed), requires_safety_checker=False)
    pipe.save_pretrained(str(path), safe_serialization=True)
    return path
