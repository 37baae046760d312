"""What a Diffusion Noise Feature costs: UNet evaluations and seconds per image, by inversion steps and input size.

Two pixel-space UNet2DModel repositories are built with random weights and saved to a temporary folder, then loaded
through the DNF extractor's real loading path:

* ``tiny``: the test model (block channels (4, 8), one attention block);
* ``ddpm-256``: the architecture of ``google/ddpm-bedroom-256`` / ``google/ddpm-ema-church-256`` (block channels
  128-128-256-256-512-512, two layers per block, self-attention at 16 px; ~114 M parameters). Random weights cost
  exactly what the real ones do.

    python benchmarks/dnf_cost.py                      # CPU: steps 1, 5, 20 at 64 and 256 px
    python benchmarks/dnf_cost.py --device cuda --precision fp16 --images 8

A cell whose estimated time (from the steps=1 run) exceeds ``--budget`` seconds is skipped and printed as such.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

DDPM_256_UNET = {  # google/ddpm-bedroom-256's unet/config.json (architecture only)
    "sample_size": 256,
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 2,
    "block_out_channels": (128, 128, 256, 256, 512, 512),
    "down_block_types": (
        "DownBlock2D",
        "DownBlock2D",
        "DownBlock2D",
        "DownBlock2D",
        "AttnDownBlock2D",
        "DownBlock2D",
    ),
    "up_block_types": ("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
    "downsample_padding": 0,
    "flip_sin_to_cos": False,
    "freq_shift": 1,
    "norm_eps": 1e-6,
    "norm_num_groups": 32,
    "attention_head_dim": None,
}
TINY_UNET = {
    "sample_size": 32,
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 1,
    "block_out_channels": (4, 8),
    "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
    "up_block_types": ("AttnUpBlock2D", "UpBlock2D"),
    "norm_num_groups": 2,
    "attention_head_dim": 2,
}


def save_repo(folder: Path, unet_config: dict) -> Path:
    import torch
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(**unet_config)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(folder)
    return folder


def measure(repo: Path, steps: int, size: int, n: int, device: str, precision: str) -> tuple[float, float]:
    """``(UNet evaluations per image, seconds per image)`` for ``n`` images in one batch."""
    from gendetect.data.synthetic import synthetic_image
    from gendetect.features import create_extractor

    ext = create_extractor(
        "dnf", model=str(repo), steps=steps, size=size, device=device, precision=precision, batch_size=n
    )
    images = [synthetic_image("real", size, seed=i) for i in range(n)]
    ext.extract_batch(images[:1])  # load the network, warm up
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    calls0, evals0 = ext.unet_calls, ext.unet_images
    t0 = time.perf_counter()
    ext.extract_batch(images)
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    assert ext.unet_calls - calls0 == steps, "one batched UNet call per step"
    return (ext.unet_images - evals0) / n, seconds / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--steps", default="1,5,20")
    parser.add_argument("--sizes", default="64,256")
    parser.add_argument("--images", type=int, default=0, help="images per cell (default: 4 tiny, 1 real-size)")
    parser.add_argument("--budget", type=float, default=180.0, help="skip a cell estimated to take longer (s)")
    parser.add_argument("--models", default="tiny,ddpm-256")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: run with --device cpu", file=sys.stderr)
        return 2
    steps = [int(s) for s in args.steps.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    where = args.device if args.device == "cpu" else torch.cuda.get_device_name()
    print(f"device {where} ({args.precision}), torch threads {torch.get_num_threads()}")
    print(f"{'model':<10} {'size':>5} {'steps':>5} {'UNet evals/img':>14} {'s/img':>10} {'img/s':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            repo = save_repo(Path(tmp) / name, TINY_UNET if name == "tiny" else DDPM_256_UNET)
            n = args.images or (4 if name == "tiny" else 1)
            for size in sizes:
                per_step = None
                for s in steps:
                    if per_step is not None and per_step * s * n > args.budget:
                        print(
                            f"{name:<10} {size:>5} {s:>5} {'skipped':>14} (estimated {per_step * s * n:.0f} s > "
                            f"--budget {args.budget:.0f} s)"
                        )
                        continue
                    evals, sec = measure(repo, s, size, n, args.device, args.precision)
                    per_step = max(per_step or 0.0, sec / s)  # the costliest step seen so far
                    print(f"{name:<10} {size:>5} {s:>5} {evals:>14.0f} {sec:>10.4f} {1 / sec:>9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
