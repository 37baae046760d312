"""Engine scaling: sharded scans on the local engine (``--jobs 1`` and ``--jobs 2``) and on Ray with 1 and 2 actors.

The four configurations run interleaved (one of each per round, a fresh output folder each time) and the round is
repeated; medians, ratios and the machine's load are printed. Ray start-up happens once and is excluded (it is paid
once per cluster); actor start-up (importing gendetect, loading the model) is included, since every run pays it.

    python benchmarks/engine_scaling.py                       # 3000 procedural 384x384 JPEGs, shards of 100, 3 rounds
    python benchmarks/engine_scaling.py -n 600 -r 3           # quicker (a 2-actor/1-actor ratio on a short job
                                                              # understates the scaling: actor start-up dominates)
    python benchmarks/engine_scaling.py --only ray            # Ray 1 vs 2 actors only
    python benchmarks/engine_scaling.py --address auto        # on a running Ray cluster

Target (issue 17): Ray 2 actors / 1 actor >= 1.8x on a job of at least a minute (on 2 free cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def _photos(folder: Path, n: int, size: int) -> list[str]:
    from gendetect.data.synthetic import synthetic_image

    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        a = np.asarray(synthetic_image("real" if i % 2 else "fake", size, seed=i), np.float32)
        a = np.clip(a + rng.normal(0, 5, a.shape), 0, 255).astype(np.uint8)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(a).save(path, quality=90)
        files.append(str(path))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=3000, help="procedural images")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("-r", "--rounds", type=int, default=3, help="interleaved repetitions (>= 3)")
    parser.add_argument("--only", choices=["local", "ray", "all"], default="all")
    parser.add_argument("--address", default=None, help="Ray address; default: a local instance with 2 CPUs")
    args = parser.parse_args(argv)
    rounds = max(3, args.rounds)

    from gendetect import load_model
    from gendetect.features.extract import tune_allocator
    from gendetect.scale import run_scan_sharded

    tune_allocator()  # as the CLI does
    model = load_model()
    configs: dict[str, dict] = {}
    if args.only in ("local", "all"):
        configs["local --jobs 1"] = {"engine": "local", "jobs": 1}
        configs["local --jobs 2"] = {"engine": "local", "jobs": 2}
    if args.only in ("ray", "all"):
        import logging

        import ray
        import ray.data

        logging.getLogger("ray").setLevel(logging.WARNING)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        if hasattr(ctx, "enable_rich_progress_bars"):
            ctx.enable_rich_progress_bars = False
        if args.address:
            ray.init(address=args.address, log_to_driver=False)
        else:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        configs["ray 1 actor"] = {"engine": "ray", "workers": 1}
        configs["ray 2 actors"] = {"engine": "ray", "workers": 2}
    times: dict[str, list[float]] = {k: [] for k in configs}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        files = _photos(data, args.n, args.size)
        print(f"model {model.name}: {model.extractor!r}")
        print(f"{args.n} JPEGs of {args.size}x{args.size}, shards of {args.shard_size}, {rounds} interleaved rounds")
        print(f"load before: {_load()}")
        for r in range(rounds):
            for name, kw in configs.items():
                out = Path(tmp) / f"{name.replace(' ', '_')}-{r}"
                t0 = time.perf_counter()
                run = run_scan_sharded(files, model, out, shard_size=args.shard_size, **kw)
                n = run.write_parquet(out / "scan.parquet")
                times[name].append(time.perf_counter() - t0)
                assert n == len(files)
            done = ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items())
            print(f"  round {r + 1}: {done}; load {_load()}")
    if args.only in ("ray", "all"):
        import ray

        ray.shutdown()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"load after: {_load()}")
    for k, v in med.items():
        print(f"{k:16} median {v:7.1f} s  {args.n / v:7.1f} images/s")

    def ratio(a: str, b: str) -> str:
        per_round = [x / y for x, y in zip(times[a], times[b])]
        return f"median {statistics.median(per_round):.2f}x (per round {', '.join(f'{x:.2f}' for x in per_round)})"

    if "local --jobs 2" in med:
        print(f"local --jobs 2 / --jobs 1: {ratio('local --jobs 1', 'local --jobs 2')}   target >= 1.8x")
    if "ray 2 actors" in med:
        print(f"ray 2 actors / 1 actor:    {ratio('ray 1 actor', 'ray 2 actors')}   target >= 1.8x")
        print(f"  (the 1-actor job took {med['ray 1 actor']:.0f} s; the target needs >= 60 s)")
    if "ray 1 actor" in med and "local --jobs 1" in med:
        print(f"ray 1 actor / local --jobs 1 (throughput): {ratio('local --jobs 1', 'ray 1 actor')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
