"""CLIP scan throughput against the raw forward pass of the same model (CPU by default).

End to end = ``gendetect scan`` machinery: read, decode, centre-crop, batch, forward, score, rows.
Raw forward = ``extractor.forward`` on an already preprocessed batch tensor of the same size.

    python benchmarks/clip_throughput.py                             # tiny random CLIP and random ViT-B-32
    python benchmarks/clip_throughput.py --model ViT-B-32 --pretrained openai   # real weights, once cached
    python benchmarks/clip_throughput.py --device cuda --precision fp16

Random weights cost exactly what real ones do; they are used here only to time the architecture.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gendetect import DetectionPipeline, create_detector, create_extractor, scan
from gendetect.data.synthetic import synthetic_image


def bench(model: str, pretrained: str, n: int, batch: int, device: str, precision: str) -> tuple[float, float]:
    import torch

    ext = create_extractor(
        "openclip", model=model, pretrained=pretrained, device=device, batch_size=batch, precision=precision
    )
    rng = np.random.default_rng(0)
    det = create_detector("logistic").fit(rng.normal(size=(20, ext.dim)), np.r_[np.zeros(10), np.ones(10)])
    pipe = DetectionPipeline(ext, det, 0.5, {"name": f"bench-{model}"})
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(n):
            path = Path(tmp) / f"{i}.jpg"
            synthetic_image("real", 320, seed=i).save(path, quality=90)
            files.append(str(path))
        list(scan(files[:batch], pipe))  # warm-up
        t0 = time.perf_counter()
        rows = list(scan(files, pipe))
        t_scan = time.perf_counter() - t0
        assert all(r.status == "ok" for r in rows)
    h, w = ext._size
    pixels = torch.randn(batch, 3, h, w)
    for _ in range(3):  # warm-up, as the scan had
        ext.forward(pixels)
    t0 = time.perf_counter()
    reps = max(2, 2 * n // batch)
    for _ in range(reps):
        ext.forward(pixels)
    t_fwd = time.perf_counter() - t0
    return n / t_scan, reps * batch / t_fwd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="open_clip model (repeatable)")
    parser.add_argument("--pretrained", default="random")
    parser.add_argument("-n", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args(argv)
    import torch

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {args.precision}, "
        f"batch {args.batch}, {args.n} images of 320x320 JPEG"
    )
    for model in args.model or ["test-tiny-clip", "ViT-B-32"]:
        scan_ips, fwd_ips = bench(model, args.pretrained, args.n, args.batch, args.device, args.precision)
        print(
            f"{model:16s} ({args.pretrained}): scan {scan_ips:8.1f} img/s, raw forward {fwd_ips:8.1f} img/s, "
            f"ratio {scan_ips / fwd_ips:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
