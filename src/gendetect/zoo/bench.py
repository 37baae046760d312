"""CPU (or GPU) cost of the zoo's networks: ``python -m gendetect.zoo.bench [--device cuda] [--repeats 5]``.

The networks are built at full size with random weights (speed does not depend on the values; nothing is
downloaded) and timed on one image per forward pass, after one warm-up pass. CoDE is left out: its width comes
from its config.json, which is not here.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

CASES: tuple[tuple[str, str, dict[str, Any], int], ...] = (
    ("npr 256x256", "npr-resnet", {"layers": [3, 4]}, 256),
    ("cnndetection 256x256", "cnndetection-resnet", {"layers": [3, 4, 6, 3]}, 256),
    ("cnndetection 512x512", "cnndetection-resnet", {"layers": [3, 4, 6, 3]}, 512),
    ("commfor 384x384", "commfor-vit", {"model": "vit_small_patch16_384.augreg_in21k_ft_in1k"}, 384),
    ("commfor-224 224x224", "commfor-vit", {"model": "vit_small_patch16_224.augreg_in21k_ft_in1k"}, 224),
)


def time_networks(device: str = "cpu", repeats: int = 5) -> dict[str, float]:
    """Seconds per image for each case of :data:`CASES` (fp32, batch 1)."""
    import torch

    from gendetect.zoo.nets import NETS

    torch.manual_seed(0)
    out = {}
    for label, arch, params, size in CASES:
        net = NETS.get(arch).build(**params).eval().to(device)
        x = torch.randn(1, 3, size, size, device=device)
        with torch.no_grad():
            net(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(repeats):
                net(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
        out[label] = (time.perf_counter() - t0) / repeats
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    for label, seconds in time_networks(args.device, args.repeats).items():
        sys.stdout.write(f"{label}: {seconds * 1000:.0f} ms/image ({args.device}, fp32, batch 1)\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
