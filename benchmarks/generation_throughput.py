"""Generation throughput: images per second per generator, end to end and for the pipeline call alone.

End to end = ``generate_dataset`` on a COCO-format caption file: plan, load the pipeline, generate, re-encode to the
paired real's format (``match-real``), hash, commit shards, write the manifest. Pipeline alone = the loaded
generator's ``generate`` on the same prompts. By default both run on tiny random diffusers pipelines (32 px,
``tests/diffusers_dummies.py``), which measures the builder's overhead rather than a real model's speed.

    python benchmarks/generation_throughput.py                            # tiny pipelines, CPU
    python benchmarks/generation_throughput.py --threads 1                # steadier on a shared CPU
    python benchmarks/generation_throughput.py --device cuda              # same on a GPU
    python benchmarks/generation_throughput.py --generators sd14,sd21 --steps 30 --device cuda -n 32   # real weights
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def _dummies() -> Any:
    """``tests/diffusers_dummies.py``, loaded by path (the tests folder is not an installed package)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "diffusers_dummies.py"
    spec = importlib.util.spec_from_file_location("diffusers_dummies", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_coco(folder: Path, n: int) -> Path:
    """``n`` captions over ``n`` real 64x48 JPEGs (quality 70..95), COCO captions JSON format."""
    images, anns = [], []
    for i in range(n):
        arr = (np.random.default_rng(i).random((48, 64, 3)) * 255).astype("uint8")
        Image.fromarray(arr).save(folder / f"{i:012d}.jpg", quality=70 + (i * 5) % 30)
        images.append({"id": i, "file_name": f"{i:012d}.jpg"})
        anns.append({"id": 1000 + i, "image_id": i, "caption": f"a photograph of object number {i} on a table"})
    path = folder / "captions.json"
    path.write_text(json.dumps({"images": images, "annotations": anns}))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generators", default=None, help="generators to time (default: two tiny pipelines)")
    parser.add_argument("-n", type=int, default=48, help="captions (= fakes per generator)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--shard-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is steadier on a busy box)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from gendetect.generation import generate_dataset, get_generator, load_generator
    from gendetect.runs import GenerateRun
    from gendetect.scale.options import EngineOptions

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        captions = make_coco(tmp, args.n)
        if args.generators:
            specs = [get_generator(g, steps=args.steps) for g in args.generators.split(",")]
        else:
            save_tiny_sd_pipeline = _dummies().save_tiny_sd_pipeline

            specs = [
                get_generator(f"diffusers:{save_tiny_sd_pipeline(tmp / 'tiny-sd-32', seed=0)}", steps=args.steps),
                get_generator(
                    f"diffusers:{save_tiny_sd_pipeline(tmp / 'tiny-sd-64', seed=1)}",
                    steps=args.steps,
                    scheduler="euler",
                    resolution=64,
                ),
            ]
        print(
            f"{args.n} images per generator, {args.steps} steps, device {args.device}, batch {args.batch_size}, "
            f"threads {args.threads or 'default'}"
        )
        print(f"{'generator':40} {'end-to-end img/s':>17} {'pipeline img/s':>15} {'load s':>7}")
        for spec in specs:
            label = spec.name.replace(str(tmp) + "/", "")
            t0 = time.perf_counter()
            res = generate_dataset(
                GenerateRun(captions=captions, generators=(spec,), device=args.device, batch_size=args.batch_size),
                tmp / f"out-{abs(hash(spec.name))}",
                EngineOptions(shard_size=args.shard_size),
            )
            e2e = time.perf_counter() - t0
            assert res.counts["fakes"] == args.n, res.counts
            t0 = time.perf_counter()
            model = load_generator(spec, device=args.device)
            load = time.perf_counter() - t0
            prompts = [f"a photograph of object number {i} on a table" for i in range(args.n)]
            settings = spec.draw(0)
            model.generate(prompts[:1], [0], **settings)  # warm-up
            t0 = time.perf_counter()
            for i in range(0, args.n, args.batch_size):
                model.generate(prompts[i : i + args.batch_size], list(range(i, i + args.batch_size)), **settings)
            alone = time.perf_counter() - t0
            print(f"{label:40} {args.n / e2e:17.1f} {args.n / alone:15.1f} {load:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
